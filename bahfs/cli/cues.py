"""``bahfs cues evaluate``: which behaviour feature carries which annotated cue."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bahfs.cli.common import app, friendly, print_table

cues_app = typer.Typer(help="The annotated cues against extracted features.",
                       no_args_is_help=True)
app.add_typer(cues_app, name="cues")


@cues_app.command("evaluate")
@friendly
def evaluate(
    store: Annotated[Path, typer.Argument(help="Store with a `behaviour` feature set "
                                               "(bahfs extract --extractors behaviour).")],
    feature_set: Annotated[str, typer.Option(
        help="Feature set: id, name or extractor.")] = "behaviour",
    min_segments: Annotated[int, typer.Option(
        help="Cues coded in fewer segments are left out.")] = 5,
    top: Annotated[int, typer.Option(help="Best features listed per cue.")] = 3,
    out: Annotated[Path | None, typer.Option(
        help="Where to write cue_auc.csv and cue_auc.png (default STORE/plots).")] = None,
    max_width: Annotated[int, typer.Option(
        help="Leave out arrays wider than this many columns (0: score every column "
             "of every array).")] = 0,
) -> None:
    """Per cue with enough segments: AUC of every feature column separating frames in
    segments coded with the cue from the other frames of the same videos; prints
    the best features per cue, writes the full table (CSV) and a heat map (PNG)."""
    cue_table(store, feature_set, min_segments, top, out, max_width or None)


def cue_table(store: Path, feature_set: str, min_segments: int, top: int,
              out: Path | None = None, max_width: int | None = None) -> None:
    """``bahfs cues evaluate``'s work: the table printed (best ``top`` per cue) and
    written to ``out`` (default STORE/plots) as cue_auc.csv and cue_auc.png."""
    from store.cue_eval import evaluate_cues, plot_cue_auc, top_features

    table = evaluate_cues(store, feature_set, min_segments, max_width)
    print_table(f"best {top} {feature_set} features per cue (AUC; 0.5 = no separation)",
                top_features(table, top))
    folder = out or Path(store) / "plots"
    folder.mkdir(parents=True, exist_ok=True)
    table.write_csv(folder / "cue_auc.csv")
    png = plot_cue_auc(table, folder / "cue_auc.png")
    typer.echo(f"table: {folder / 'cue_auc.csv'}\nplot: {png}")
