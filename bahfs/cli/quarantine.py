"""``bahfs quarantine list|release|bugs``: the videos quarantined for a fault of
their own, putting them back to pending, and the tracebacks of videos that hit a
bug (``store.quarantine``, ``store.failures``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bahfs.cli.common import app, friendly

quarantine_app = typer.Typer(no_args_is_help=True, help="Videos quarantined for a fault "
                             "of their own: list them, put them back to pending.")
app.add_typer(quarantine_app, name="quarantine")

StoreArg = Annotated[Path, typer.Argument(help="Store directory.")]


@quarantine_app.command("list")
@friendly
def list_quarantine(
    store: StoreArg,
    stage: Annotated[str | None, typer.Option(help="Only this stage: ingest or extract."
                                              )] = None,
) -> None:
    """Video, participant, stage, kind, when and reason of every quarantined video."""
    from store.quarantine import quarantined

    q = quarantined(store, stage)
    for vid, pid, st, kind, when, why in q.select(
            "video_id", "participant_id", "stage", "kind", "quarantined_at",
            "reason").iter_rows():
        typer.echo(f"{vid}\t{pid}\t{st}\t{kind or '-'}\t{when or '-'}\t{why}")
    typer.echo(f"{q.height} videos quarantined", err=True)


@quarantine_app.command("release")
@friendly
def release_quarantine(
    store: StoreArg,
    video_ids: Annotated[list[str] | None, typer.Argument(
        help="Video ids to release (see `bahfs quarantine list`).")] = None,
    release_all: Annotated[bool, typer.Option("--all", help="Release every quarantined "
                                                             "video (of --stage if given).")]
    = False,
    stage: Annotated[str | None, typer.Option(help="Release the videos quarantined at "
                                                   "this stage: ingest or extract.")] = None,
) -> None:
    """Put quarantined videos back to pending: the next ingest or extract probes and
    extracts them again. Each release is recorded in the audit table."""
    from store.quarantine import release

    report = release(store, video_ids or None, everything=release_all, stage=stage)
    for vid, st in report.released.items():
        typer.echo(f"released {vid} (quarantined at {st})")
    for batch in report.batches_requeued:
        typer.echo(f"batch {batch} will be ingested again by the next `bahfs extract` "
                   "(or `bahfs ingest --merge`)")
    typer.echo(f"{len(report.released)} videos released")


@quarantine_app.command("bugs")
@friendly
def list_bugs(
    store: StoreArg,
    out: Annotated[Path | None, typer.Option(help="Write the tracebacks to this text file "
                                                  "(to send with a bug report).")] = None,
) -> None:
    """The videos that hit a bug (not their fault, not quarantined), with the saved
    tracebacks."""
    from store.tables import read_table_or_empty

    bugs = read_table_or_empty(store, "bugs")
    text = "\n".join(f"=== {vid} (run {run}, {at}): {err}\n{tb}" for vid, run, at, err, tb
                     in bugs.select("video_id", "run_id", "at", "error",
                                    "traceback").iter_rows())
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"{bugs.height} bug reports written to {out}")
    else:
        typer.echo(text)
