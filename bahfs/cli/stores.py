"""``bahfs verify``, ``bahfs access`` and ``bahfs export-baseline``: checking, securing
and exporting a store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bahfs.cli.common import (
    CHECK_FAILED,
    LOOK_AFTER,
    AnyStoreArg,
    app,
    friendly,
    local_folder,
)

if TYPE_CHECKING:
    from store.backend import Store


@app.command(rich_help_panel=LOOK_AFTER, epilog="Example: bahfs verify /data/bah/store")
@friendly
def verify(
    store: AnyStoreArg,
    fix: Annotated[bool, typer.Option(
        help="Repair what bahfs wrote: re-queue lost videos (recorded as extracted, no "
             "longer in the store) so that the next `bahfs extract` restores them, give "
             "the store's own paths its access policy, then verify.")] = False,
) -> None:
    """Check the store against its tables and access policy; writes nothing.

    One line per problem, exit 1 when the store is not valid. Only --fix writes, and
    only what bahfs wrote inside the store.
    """
    from store.catalog import devices, extracted_table, featuresets_table
    from store.local import as_store

    st = as_store(store)  # opened once, here at the boundary
    if fix:
        _fix(st)
    problems = verify_problems(st)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        typer.secho(f"store is NOT valid: {len(errors)} error(s)", fg=typer.colors.RED,
                    err=True)
        raise typer.Exit(CHECK_FAILED)
    ext = extracted_table(st)  # read from the hierarchy; the tables are left alone
    fsets = featuresets_table(st, ext)
    typer.secho(f"store is valid: {fsets.height} feature sets, {ext.height} extracted videos",
                fg=typer.colors.GREEN)
    for fs, by_device in devices(ext).items():
        typer.echo(f"  {fs}: " + ", ".join(f"{n} videos on {d}" for d, n in by_device.items()))


def _fix(store: Store) -> None:
    from store.access import fix_drift
    from store.catalog import refresh_catalog
    from store.local import LocalStore
    from store.verify import lost_videos

    if isinstance(store, LocalStore):  # a bucket has no modes: its policy is IAM's
        fixed, failed = fix_drift(store.root)
        if fixed:
            typer.echo(f"access: {len(fixed)} paths given the store's access policy")
        for path, why in failed:
            typer.secho(f"access: could not fix {path}: {why}", fg=typer.colors.RED,
                        err=True)
    lost = lost_videos(store)
    refresh_catalog(store)  # the catalog now says what is there: extract redoes the rest
    for fs, _, vid in lost:
        typer.echo(f"re-queued {vid} ({fs}): the next `bahfs extract` restores it")


def verify_problems(store: Store | Path) -> list[Any]:
    """:func:`store.verify.verify_store`, each problem printed on its own line."""
    from store.verify import verify_store

    problems = verify_store(store)
    for p in problems:
        typer.secho(str(p), fg=typer.colors.RED if p.severity == "error"
                    else typer.colors.YELLOW, err=True)
    return problems


@app.command("access", rich_help_panel=LOOK_AFTER,
             epilog="Example: bahfs access /data/bah/store --scope group --group bah-lab")
@friendly
def access_cmd(
    store: Annotated[Path, typer.Argument(
        metavar="STORE", callback=local_folder,
        show_default=False, help="A store in a local folder; or, with --scope or "
                                 "--group, a missing or empty folder: a new store with "
                                 "that policy (a bucket's access is its policy's and "
                                 "IAM's).")],
    scope: Annotated[str, typer.Option(
        help="group: owner and group read and write (files 0660, folders 2770); "
             "owner: the owner alone (0600, 0700). Nothing for others either way.")] = "",
    group: Annotated[str, typer.Option(
        help="A group every path is given (you must be a member); '-' for none "
             "(paths keep the store directory's group).")] = "",
) -> None:
    """Show who may read the store; with --scope or --group, set it.

    A new policy is recorded in STORE/access.json and applied to every path bahfs
    wrote there. Give it before the first ingest to create a store with it.
    """
    from store.access import ACCESS_FILE, load_policy, make_policy, save_policy
    from store.location import existing_store, store_to_write

    if scope or group:  # checked before a new store is made
        make_policy(scope or "group", None if group in ("", "-") else group)
    (store_to_write if scope or group else existing_store)(store)
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


@app.command("export-baseline", rich_help_panel=LOOK_AFTER,
             epilog="Example: bahfs export-baseline /data/bah/store /data/bah/baseline")
@friendly
def export_baseline_cmd(
    store: AnyStoreArg,
    out: Annotated[Path, typer.Argument(show_default=False, metavar="OUT",
                                        help="Output directory.")],
    source: Annotated[list[str] | None, typer.Option(
        help="modality=featureset[:array], repeatable (default: every feature set).")] = None,
) -> None:
    """Write per-video .npy arrays and labels for baseline code.

    As the paper describes the baseline's input: one .npy per modality per video
    (n_frames rows), mirroring the release's Videos/ paths, with label arrays, split
    files and export.json. The official code's exact
    folder names are not public in a form bahfs could check (docs/store.md).
    """
    from store.errors import ConfigError
    from store.export import export_baseline

    sources = None
    if source:
        if any("=" not in s for s in source):
            raise ConfigError(f"bad --source {source}", expected="modality=featureset[:array]")
        sources = dict(s.split("=", 1) for s in source)
    report = export_baseline(store, out, sources)
    typer.echo(f"exported {report.videos} videos to {report.out}: {report.modalities}")


@app.command("copy", rich_help_panel=LOOK_AFTER,
             epilog="Example: bahfs copy /data/bah/store s3://lab-bucket/bah/store")
@friendly
def copy_cmd(
    src: Annotated[str, typer.Argument(
        metavar="SRC", show_default=False,
        help="A store: a folder, or s3://BUCKET/PREFIX.")],
    dest: Annotated[str, typer.Argument(
        metavar="DEST", show_default=False,
        help="A new store: a missing or empty folder, or s3://BUCKET/PREFIX holding none.")],
) -> None:
    """Copy a store between a local folder and a bucket (either way), then verify both.

    Everything bahfs wrote is copied but what running writers keep to themselves
    (staging, locks); each video is published at the destination after all of its
    arrays. A bucket is reached the standard AWS way (AWS_ENDPOINT_URL, AWS_REGION,
    the usual credentials).
    """
    from store.copy import copy_store

    report = copy_store(src, dest)
    typer.echo(f"copied {report.objects} objects ({report.bytes:,} bytes) to {dest}")
    failed = False
    for side, problems in (("source", report.source_problems),
                           ("destination", report.dest_problems)):
        for p in problems:
            typer.secho(f"{side}: {p}", fg=typer.colors.RED if p.severity == "error"
                        else typer.colors.YELLOW, err=True)
        failed |= any(p.severity == "error" for p in problems)
    if failed:
        raise typer.Exit(CHECK_FAILED)
    typer.secho("both stores are valid", fg=typer.colors.GREEN)
