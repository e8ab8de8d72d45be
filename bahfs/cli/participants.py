"""``bahfs purge``: a participant's consent withdrawn, everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bahfs.cli.common import app, friendly


@app.command()
@friendly
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
    if report.prefect_runs:
        typer.echo(f"{len(report.prefect_runs)} Prefect flow runs named their videos (task "
                   "names, parameters, logs on the Prefect server; docs/reliability.md): "
                   + " ".join(report.prefect_runs))
