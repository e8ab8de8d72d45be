"""``bahfs status``: what a store holds and what is left to do, on one screen."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

import typer

from bahfs.cli.common import LOOK_AFTER, AnyStoreArg, app, friendly


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def _print(s: Any) -> None:
    typer.secho(f"store {s.store}", bold=True)
    typer.echo(f"  releases: {', '.join(s.releases) or 'none ingested'}")
    if s.batches:
        typer.echo(f"  batches: {len(s.batches)}, last {s.batches[-1]['batch']} at "
                   f"{s.batches[-1]['ingested_at']}")
    p, v = s.participants, s.videos
    typer.echo(f"  participants: {p['consented']} consented, {p['excluded']} excluded, "
               f"{p['withdrawn']} withdrawn")
    typer.echo(f"  videos: {v['consented']} consented, {v['excluded']} excluded, "
               f"{v['quarantined']} quarantined")
    for reason, n in s.exclusion_reasons.items():
        typer.echo(f"    excluded, {reason}: {n}")
    typer.secho("feature sets (videos: extracted / pending / quarantined / hit by a bug)",
                bold=True)
    for f in s.feature_sets:
        typer.echo(f"  {f.feature_set}: {f.extracted} / {f.pending} / {f.quarantined} / "
                   f"{f.bugs}")
    if not s.feature_sets:
        typer.echo("  none extracted")
    typer.secho("last extract runs", bold=True)
    for r in s.runs:
        took = f"{r.seconds:.0f} s" if r.seconds is not None else "?"
        typer.echo(f"  {r.started_at}, {took}, {r.extracted} videos on "
                   f"{', '.join(r.devices) or 'no device'}: {r.outcome}")
    if not s.runs:
        typer.echo("  none")
    drift = (f"{s.drifting_paths} paths drift from it" if s.drifting_paths
             else "no drift")
    typer.echo(f"size: {_size(s.size_bytes)}; access: {s.access}, {drift}")
    typer.secho(f"next: {s.next_step}", fg=typer.colors.GREEN, bold=True)


@app.command(rich_help_panel=LOOK_AFTER, epilog="Example: bahfs status /data/bah/store --json")
@friendly
def status(
    store: AnyStoreArg,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the same as one JSON object (for scripts).")] = False,
) -> None:
    """What the store holds and what is left to do, on one screen; writes nothing.

    Releases and batches ingested; participants and videos consented, excluded and
    withdrawn; per feature set the videos extracted, pending, quarantined and hit by
    a bug; the last extract runs; size on disk, the access policy and any drift from
    it; the next command to run.
    """
    from store.status import store_status

    found = store_status(store)
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(found), indent=2))
    else:
        _print(found)
