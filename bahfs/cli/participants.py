"""``bahfs purge``: a participant's consent withdrawn, everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from bahfs.cli.common import LOOK_AFTER, app, friendly


@app.command(rich_help_panel=LOOK_AFTER,
             epilog="Example: bahfs purge /data/bah/store --participant 82553")
@friendly
def purge(
    store: Annotated[str, typer.Argument(
        metavar="STORE", show_default=False,
        help="A store: the folder `bahfs ingest` or `bahfs extract` wrote, or "
             "s3://BUCKET/PREFIX (with --not-arrived-yet, also the empty folder of a "
             "first ingest still running).")],
    participant: Annotated[str, typer.Option(
        "--participant", help="Participant id as the release spells it (82553); never a "
                              "video id.")],
    not_arrived_yet: Annotated[bool, typer.Option(
        "--not-arrived-yet", help="The participant is not in the store because their "
                                  "data has not arrived yet: record the withdrawal so no "
                                  "later ingest brings them in.")] = False,
    reason: Annotated[str, typer.Option(help="Recorded in the audit table.")] =
    "consent withdrawn",
) -> None:
    """Consent withdrawn: remove a participant from every table and array, audit it.

    The withdrawal is remembered (hashed), so no later ingest brings them back. An id
    the store does not hold is refused unless --not-arrived-yet says their data has
    not arrived yet.
    """
    from store.location import store_for_withdrawal
    from store.purge import check_participant, purge_participant
    from store.s3_objects import is_s3

    if is_s3(store):
        from store.local import open_store

        target: Any = open_store(store)  # the boundary: AWS settings read here
    else:
        target = store_for_withdrawal(Path(store), not_arrived=not_arrived_yet)
    check_participant(target, participant, not_arrived=not_arrived_yet)
    report = purge_participant(target, participant, reason=reason)
    total = sum(report.rows_removed.values())
    typer.echo(f"purged participant (subject {report.subject_sha256[:12]}): "
               f"{report.feature_videos_removed} feature videos, {total} table rows; "
               "future ingests will exclude them")
    if report.prefect_runs:
        typer.echo(f"{len(report.prefect_runs)} Prefect flow runs named their videos (task "
                   "names, parameters, logs on the Prefect server; docs/reliability.md): "
                   + " ".join(report.prefect_runs))
