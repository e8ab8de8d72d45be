"""``bahfs quarantine list|release|bugs``: the videos quarantined for a fault of
their own, putting them back to pending, and the tracebacks of videos that hit a
bug (``store.quarantine``, ``store.failures``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bahfs.cli.common import LOOK_AFTER, AnyStoreArg, app, friendly

quarantine_app = typer.Typer(no_args_is_help=True, help="Videos quarantined for a fault "
                             "of their own: list, release, bugs.",
                             epilog="Example: bahfs quarantine list /data/bah/store")
app.add_typer(quarantine_app, name="quarantine", rich_help_panel=LOOK_AFTER)


@quarantine_app.command("list", epilog="Example: bahfs quarantine list /data/bah/store "
                                        "--stage extract")
@friendly
def list_quarantine(
    store: AnyStoreArg,
    stage: Annotated[str | None, typer.Option(help="Only this stage: ingest or extract."
                                              )] = None,
) -> None:
    """List every quarantined video: video, participant, stage, kind, when, reason.

    One tab-separated line each; the count goes to stderr.
    """
    from store.quarantine import quarantined

    q = quarantined(store, stage)
    for vid, pid, st, kind, when, why in q.select(
            "video_id", "participant_id", "stage", "kind", "quarantined_at",
            "reason").iter_rows():
        typer.echo(f"{vid}\t{pid}\t{st}\t{kind or '-'}\t{when or '-'}\t{why}")
    typer.echo(f"{q.height} videos quarantined", err=True)


@quarantine_app.command("release", epilog="Example: bahfs quarantine release "
                                           "/data/bah/store --all --stage extract")
@friendly
def release_quarantine(
    store: AnyStoreArg,
    video_ids: Annotated[list[str] | None, typer.Argument(
        metavar="VIDEO_ID...",
        show_default=False, help="Video ids to release (see `bahfs quarantine list`).")
    ] = None,
    release_all: Annotated[bool, typer.Option("--all", help="Release every quarantined "
                                                             "video (of --stage if given).")]
    = False,
    stage: Annotated[str | None, typer.Option(help="Release the videos quarantined at "
                                                   "this stage: ingest or extract.")] = None,
) -> None:
    """Put quarantined videos back to pending.

    The next ingest or extract probes and extracts them again. Each release is
    recorded in the audit table.
    """
    from store.quarantine import release

    report = release(store, video_ids or None, everything=release_all, stage=stage)
    for vid, st in report.released.items():
        typer.echo(f"released {vid} (quarantined at {st})")
    for batch in report.batches_requeued:
        typer.echo(f"batch {batch} will be ingested again by the next `bahfs extract` "
                   "(or `bahfs ingest --merge`)")
    typer.echo(f"{len(report.released)} videos released")


@quarantine_app.command("bugs", epilog="Example: bahfs quarantine bugs /data/bah/store "
                                        "--out bugs.txt")
@friendly
def list_bugs(
    store: AnyStoreArg,
    out: Annotated[Path | None, typer.Option(help="Write the tracebacks to this text file "
                                                  "(to send with a bug report).")] = None,
) -> None:
    """Print the videos that hit a bug, with their saved tracebacks.

    Not the videos' fault and not quarantined: they stay pending.
    """
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
