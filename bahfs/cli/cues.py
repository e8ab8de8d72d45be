"""``bahfs cues evaluate``: which behaviour feature carries which annotated cue."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bahfs.cli.common import RESEARCH, AnyStoreArg, app, friendly, local_out, print_table

if TYPE_CHECKING:
    from store.backend import Store

cues_app = typer.Typer(help="The annotated cues against extracted features.",
                       no_args_is_help=True,
                       epilog="Example: bahfs cues evaluate /data/bah/store")
app.add_typer(cues_app, name="cues", rich_help_panel=RESEARCH)

#: the feature sets ``cues evaluate`` prefers, best first, when none is named
PREFERRED = ("behaviour", "face")


@cues_app.command("evaluate", epilog="Example: bahfs cues evaluate /data/bah/store "
                                     "--feature-set face --min-segments 3")
@friendly
def evaluate(
    store: AnyStoreArg,
    feature_set: Annotated[str, typer.Option(
        show_default=False,
        help="Feature set: id, name or extractor (default: behaviour when the store "
             "holds it, else face, else its only feature set).")] = "",
    min_segments: Annotated[int, typer.Option(
        help="Cues coded in fewer segments are left out.")] = 5,
    top: Annotated[int, typer.Option(help="Best features listed per cue.")] = 3,
    out: Annotated[Path | None, typer.Option(
        help="Where to write cue_auc.csv and cue_auc.png (default STORE/plots; a store "
             "in a bucket needs it).")] = None,
    max_width: Annotated[int, typer.Option(
        help="Leave out arrays wider than this many columns (0: score every column "
             "of every array).")] = 0,
) -> None:
    """Which feature carries which annotated cue: an AUC per cue and feature column.

    Per cue with enough segments, the AUC of every feature column separating frames
    in segments coded with the cue from the other frames of the same videos; prints
    the best features per cue, writes the full table (CSV) and a heat map (PNG).
    """
    cue_table(store, feature_set or default_feature_set(store), min_segments, top, out,
              max_width or None)


def default_feature_set(store: Store | Path) -> str:
    """The feature set ``cues evaluate`` reads when none is named: the first of
    :data:`PREFERRED` the store holds, else its only one."""
    from store.errors import NotFoundError
    from store.local import as_store
    from store.reader import FeatureReader

    st = as_store(store)
    sets = FeatureReader(st).featuresets() if st.has_features() else {}
    held = {s.extractor for s in sets.values()}
    for name in PREFERRED:
        if name in held:
            return name
    if len(sets) == 1:
        return next(iter(sets))
    raise NotFoundError(
        "no behaviour or face feature set in this store" + (
            f" (it holds {', '.join(sorted(sets))}: name one with --feature-set)"
            if sets else ""), path=st.location,
        expected="`bahfs extract SOURCE STORE --extractors face,behaviour` first")


def cue_table(store: Store | Path, feature_set: str, min_segments: int, top: int,
              out: Path | None = None, max_width: int | None = None) -> None:
    """``bahfs cues evaluate``'s work: the table printed (best ``top`` per cue) and
    written to ``out`` (default STORE/plots) as cue_auc.csv and cue_auc.png."""
    from store.cue_eval import evaluate_cues, plot_cue_auc, top_features

    folder = local_out(store, out, "plots", "--out")  # refused before any work
    table = evaluate_cues(store, feature_set, min_segments, max_width)
    print_table(f"best {top} {feature_set} features per cue (AUC; 0.5 = no separation)",
                top_features(table, top))
    folder.mkdir(parents=True, exist_ok=True)
    table.write_csv(folder / "cue_auc.csv")
    png = plot_cue_auc(table, folder / "cue_auc.png")
    typer.echo(f"table: {folder / 'cue_auc.csv'}\nplot: {png}")
