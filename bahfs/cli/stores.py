"""``bahfs verify``, ``bahfs access`` and ``bahfs export-baseline``: checking, securing
and exporting a store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bahfs.cli.common import app, friendly


@app.command()
@friendly
def verify(
    store: Annotated[Path, typer.Argument(help="Store directory.")],
    fix: Annotated[bool, typer.Option(
        help="Re-queue lost videos (recorded as extracted, no longer in the store) so "
             "that the next `bahfs extract` restores them, and give every path the "
             "store's access policy, then verify.")] = False,
) -> None:
    """Check the store against its tables and its access policy; exit 1 with a precise
    report when not valid."""
    from store.access import fix_drift
    from store.catalog import devices, refresh_catalog
    from store.verify import lost_videos, verify_store

    if fix:
        fixed, failed = fix_drift(store)
        if fixed:
            typer.echo(f"access: {len(fixed)} paths given the store's access policy")
        for path, why in failed:
            typer.secho(f"access: could not fix {path}: {why}", fg=typer.colors.RED, err=True)
        lost = lost_videos(store)
        refresh_catalog(store)  # the catalog now says what is there: extract redoes the rest
        for fs, _, vid in lost:
            typer.echo(f"re-queued {vid} ({fs}): the next `bahfs extract` restores it")
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
    for fs, by_device in devices(ext).items():
        typer.echo(f"  {fs}: " + ", ".join(f"{n} videos on {d}" for d, n in by_device.items()))


@app.command("access")
@friendly
def access_cmd(
    store: Annotated[Path, typer.Argument(help="Store directory (made when missing).")],
    scope: Annotated[str, typer.Option(
        help="group: owner and group read and write (files 0660, folders 2770); "
             "owner: the owner alone (0600, 0700). Nothing for others either way.")] = "",
    group: Annotated[str, typer.Option(
        help="A group every path is given (you must be a member); '-' for none "
             "(paths keep the store directory's group).")] = "",
) -> None:
    """Show the store's access policy; with --scope or --group, record a new one in
    STORE/access.json and apply it to every path already there. Give it before the
    first ingest to create a store with it."""
    from store.access import ACCESS_FILE, load_policy, make_policy, save_policy

    policy = load_policy(store)
    if scope or group:
        policy = make_policy(scope or policy.scope,
                             None if group == "-" else (group or policy.group))
        fixed, failed = save_policy(store, policy)
        typer.echo(f"recorded in {Path(store) / ACCESS_FILE}; {len(fixed)} paths changed")
        for path, why in failed:
            typer.secho(f"could not change {path}: {why}", fg=typer.colors.RED, err=True)
    files, dirs = policy.file_mode, policy.dir_mode
    group = f", group {policy.group or 'of the store directory'}" \
        if policy.scope == "group" else ""
    typer.echo(f"access: {policy.scope} (files {files:04o}, folders {dirs:04o}){group}")


@app.command("export-baseline")
@friendly
def export_baseline_cmd(
    store: Annotated[Path, typer.Argument(help="Store directory.")],
    out: Annotated[Path, typer.Argument(help="Output directory.")],
    source: Annotated[list[str] | None, typer.Option(
        help="modality=featureset[:array], repeatable (default: every feature set).")] = None,
) -> None:
    """Write per-video .npy arrays (n_frames rows) and labels, as the BAH baseline reads."""
    from store.errors import ConfigError
    from store.export import export_baseline

    sources = None
    if source:
        if any("=" not in s for s in source):
            raise ConfigError(f"bad --source {source}", expected="modality=featureset[:array]")
        sources = dict(s.split("=", 1) for s in source)
    report = export_baseline(store, out, sources)
    typer.echo(f"exported {report.videos} videos to {report.out}: {report.modalities}")
