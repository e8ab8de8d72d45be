"""The ``bahfs`` command line."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from bahfs.errors import BahfsError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="bahfs: extract BAH videos once, serve aligned features fast.")

F = TypeVar("F", bound=Callable[..., Any])


def _friendly(fn: F) -> F:
    """Turn bahfs errors into one clear line on stderr and exit status 2."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BahfsError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from exc

    return wrapper  # type: ignore[return-value]


def csv_names(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (comma separated option values)."""
    return [n.strip() for n in text.split(",") if n.strip()]


def _print_table(title: str, df: Any) -> None:
    import polars as pl

    with pl.Config(tbl_rows=60, tbl_cols=20, tbl_width_chars=160, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):
        typer.secho(f"\n{title}", bold=True)
        typer.echo(str(df))


@app.command("sample-data")
@_friendly
def sample_data(
    out: Annotated[Path, typer.Argument(help="Directory to write the dataset into.")],
    participants: Annotated[int, typer.Option(help="Number of participants.")] = 6,
    first_participant: Annotated[int, typer.Option(
        help="Number of the first participant (1 is id 82553); use distinct ranges "
             "for separate inbox batches.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same annotations.")] = 0,
    max_questions: Annotated[int, typer.Option(help="Questions answered (1-7).")] = 7,
    max_seconds: Annotated[float, typer.Option(help="Longest video, seconds (>= 14).")] = 30.0,
    workers: Annotated[int, typer.Option(help="Parallel render processes.")] = 2,
    variant: Annotated[str, typer.Option(
        help="Layout: release (the BAH release as it ships), official (the official "
             "code's video_annotation.yaml and dataset-splits/), challenge-2025 (four-key "
             "annotation.yml, ids without Videos/).")] = "release",
) -> None:
    """Generate a sample dataset in the BAH release layout (real H.264/AAC videos)."""
    from pydantic import ValidationError

    from bahfs.errors import ConfigError
    from bahfs.sample.generate import SampleConfig, generate
    from bahfs.sample.release_files import VARIANTS

    try:
        cfg = SampleConfig(participants=participants, first_participant=first_participant,
                           seed=seed, max_questions=max_questions, max_seconds=max_seconds,
                           workers=workers, variant=variant)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(f"bad option: {exc.errors()[0]['msg']}",
                          expected=f"variant one of {list(VARIANTS)}") from exc
    t0 = time.perf_counter()
    summary = generate(out, cfg)
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    typer.echo(json.dumps(summary, indent=2))


@app.command()
@_friendly
def ingest(
    dataset: Annotated[Path, typer.Argument(help="BAH release directory (real or generated).")],
    store: Annotated[Path, typer.Option("--store", help="Store directory to write.")],
    require_consent: Annotated[str, typer.Option(
        help="Consents a participant must have given, comma separated: "
             "challenges,publications.")] = "challenges,publications",
    merge: Annotated[bool, typer.Option(
        help="Merge DATASET (a batch, or an inbox of batches) into the tables instead of "
             "replacing them; unchanged batches are skipped.")] = False,
) -> None:
    """Read a release and write its Parquet tables (consent applied, videos probed)."""
    from bahfs.errors import StoreError
    from store.batches import find_batches, ingest_batch, pending_batches
    from store.ingest import ConsentPolicy
    from store.ingest import ingest as run_ingest
    from store.tables import read_table_or_empty

    policy = ConsentPolicy(require=tuple(csv_names(require_consent)))
    t0 = time.perf_counter()
    if merge:
        new = pending_batches(store, find_batches(dataset))
        reports = [(b.name, ingest_batch(b, store, policy)) for b in new]
        if not reports:
            typer.echo(f"nothing new under {dataset}")
    elif read_table_or_empty(store, "batches").height:
        raise StoreError("this store holds merged batches; replacing its tables with one "
                         "release would drop them", path=store,
                         expected="`bahfs ingest --merge`, or a new store")
    else:
        reports = [(str(dataset), run_ingest(dataset, store, policy))]
    for name, report in reports:
        typer.echo(f"ingested {report.participants} participants, {report.videos} videos, "
                   f"{report.frames} frames, {report.segments} A/H segments from {name} "
                   f"into {store} in {time.perf_counter() - t0:.1f} s")
        for note in report.notes:
            typer.echo(f"  {note}")
        for pid, reason in report.excluded.items():
            typer.echo(f"  excluded {pid}: {reason}")
        for vid, reason in report.quarantined.items():
            typer.secho(f"  quarantined {vid}: {reason}", fg=typer.colors.YELLOW)


@app.command()
@_friendly
def stats(
    store: Annotated[Path, typer.Argument(help="Store directory written by `bahfs ingest`.")],
    plots: Annotated[Path | None, typer.Option(help="Where to write PNG plots "
                                                    "(default STORE/plots).")] = None,
) -> None:
    """Print the dataset tables and cue statistics; write PNG plots."""
    from store.plots import plot_stats
    from store.stats import all_stats
    from store.tables import read_manifest

    manifest = read_manifest(store)
    results = all_stats(store)
    for name, df in results.items():
        _print_table(name.replace("_", " "), df)
    excluded = manifest.get("excluded", {})
    typer.echo(f"\n{len(excluded)} participants excluded for consent: "
               + ", ".join(f"{k} ({v})" for k, v in excluded.items()))
    written = plot_stats(results, plots or Path(store) / "plots")
    typer.echo("plots: " + ", ".join(str(p) for p in written))


@app.command()
@_friendly
def purge(
    participant: Annotated[str, typer.Option("--participant", help="Participant id.")],
    store: Annotated[Path, typer.Option("--store", help="Store directory.")] = Path("store"),
    reason: Annotated[str, typer.Option(help="Recorded in the audit table.")] =
    "consent withdrawn",
) -> None:
    """Consent withdrawn: remove a participant from every table and array, audit it."""
    from store.purge import purge_participant

    report = purge_participant(store, participant, reason=reason)
    total = sum(report.rows_removed.values())
    typer.echo(f"purged participant (subject {report.subject_sha256[:12]}): "
               f"{report.feature_videos_removed} feature videos, {total} table rows; "
               "future ingests will exclude them")


@app.command()
@_friendly
def verify(
    store: Annotated[Path, typer.Argument(help="Store directory.")],
) -> None:
    """Check the store against its tables; exit 1 with a precise report when not valid."""
    from store.catalog import refresh_catalog
    from store.verify import verify_store

    problems = verify_store(store)
    for p in problems:
        typer.secho(str(p), fg=typer.colors.RED if p.severity == "error"
                    else typer.colors.YELLOW, err=True)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        typer.secho(f"store is NOT valid: {len(errors)} error(s)", fg=typer.colors.RED,
                    err=True)
        raise typer.Exit(1)
    fsets, ext = refresh_catalog(store)
    typer.secho(f"store is valid: {fsets.height} feature sets, {ext.height} extracted videos",
                fg=typer.colors.GREEN)


@app.command("export-baseline")
@_friendly
def export_baseline_cmd(
    store: Annotated[Path, typer.Argument(help="Store directory.")],
    out: Annotated[Path, typer.Argument(help="Output directory.")],
    source: Annotated[list[str] | None, typer.Option(
        help="modality=featureset[:array], repeatable (default: every feature set).")] = None,
) -> None:
    """Write per-video .npy arrays (n_frames rows) and labels, as the BAH baseline reads."""
    from bahfs.errors import ConfigError
    from store.export import export_baseline

    sources = None
    if source:
        if any("=" not in s for s in source):
            raise ConfigError(f"bad --source {source}", expected="modality=featureset[:array]")
        sources = dict(s.split("=", 1) for s in source)
    report = export_baseline(store, out, sources)
    typer.echo(f"exported {report.videos} videos to {report.out}: {report.modalities}")


def _metrics_table(results: dict[str, Any]) -> Any:
    import polars as pl

    rows = []
    for split, r in results.items():
        if "error" in r:
            continue
        for level in ("frame", "video"):
            m = r[level]
            rows.append({"split": split, "level": level,
                         "n": r["frames"] if level == "frame" else r["videos"],
                         **{k: round(m[k], 4) for k in ("accuracy", "f1_pos", "f1_neg",
                                                        "avg_f1", "w_f1", "ap_pos")}})
    return pl.DataFrame(rows)


@app.command()
@_friendly
def train(
    store: Annotated[Path, typer.Argument(help="Store with features and tables.")],
    model: Annotated[str, typer.Option(help="mlp, tcn, fusion_concat, fusion_attention.")]
    = "tcn",
    modalities: Annotated[str, typer.Option(
        help="Comma separated: extractor names, or name=featureset[:array].")]
    = "face,audio,words",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 5,
    window: Annotated[int, typer.Option(help="Window length in frames.")] = 96,
    hop: Annotated[int, typer.Option(help="Hop between training windows.")] = 48,
    batch_size: Annotated[int, typer.Option(help="Windows per batch.")] = 64,
    sampler: Annotated[str, typer.Option(help="undersample, participant or all.")]
    = "undersample",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    workers: Annotated[int, typer.Option(help="DataLoader worker processes.")] = 0,
    out: Annotated[Path, typer.Option(help="Where run directories go.")] = Path("runs"),
) -> None:
    """Train a baseline from the store (no video decoding); print val/test metrics."""
    from training.run import TrainConfig
    from training.run import train as run_train

    cfg = TrainConfig(store=store, model=model, epochs=epochs, window=window, hop=hop,
                      batch_size=batch_size, sampler=sampler, seed=seed, workers=workers,
                      out=out, modalities=tuple(m.strip() for m in modalities.split(",")))
    run = run_train(cfg, log=typer.echo)
    results = json.loads((run / "results.json").read_text())
    _print_table(f"{model} on {modalities}: official BAH metrics", _metrics_table(
        results["splits"]))
    for split, r in results["splits"].items():
        if "error" in r:
            typer.secho(f"{split}: not evaluated ({r['error']})", fg=typer.colors.YELLOW)
    typer.echo(f"run: {run}")


@app.command()
@_friendly
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run directory written by `bahfs train`.")],
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    store: Annotated[Path | None, typer.Option(help="Another store to evaluate on.")] = None,
) -> None:
    """Evaluate a trained run on a split: frame- and video-level official metrics."""
    from training.run import evaluate as run_evaluate

    result = run_evaluate(run, split, store)
    _print_table(f"{run.name} on {split}", _metrics_table({split: result}))
    typer.echo(f"written: {run / f'eval_{split}.json'}")


@app.command("extract-video")
@_friendly
def extract_video(
    video: Annotated[Path, typer.Argument(help="Any video file ffmpeg reads.")],
    out: Annotated[Path, typer.Option("--out", help="Output Zarr group (OUT.zarr).")],
    extractors: Annotated[str, typer.Option(help="Comma separated extractor names "
                                                 "(default: face,logmel).")] = "",
) -> None:
    """Run the extractors on one video; write a standalone Zarr group (frames first)."""
    import extractors as registry
    from extractors.pipeline import extract_all, write_standalone

    names = csv_names(extractors) or list(
        registry.DEFAULT_EXTRACTORS)
    chosen = [registry.get_extractor(n)() for n in names]
    t0 = time.perf_counter()
    feats = extract_all(video, chosen)
    write_standalone(out, feats, video)
    n = feats[0].n_frames
    dt = time.perf_counter() - t0
    typer.echo(f"{video}: {n} frames, {len(feats)} extractors ({', '.join(names)}) in "
               f"{dt:.1f} s ({n / dt:.0f} frames/s) -> {out}")


# `bahfs extract` and `bahfs demo` (Prefect) live in their own module
from bahfs import cli_ops as _cli_ops  # noqa: E402, F401 - registers its commands
from bahfs import cli_release as _cli_release  # noqa: E402, F401 - registers check-release

if __name__ == "__main__":  # pragma: no cover
    app()
