"""``bahfs doctor``: is this machine ready for a run? (:mod:`bahfs.doctor`)"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bahfs.cli.common import CHECK_FAILED, START, app, friendly


def _store_if_given(path: Path | None) -> Path | None:
    from store.location import existing_store

    return None if path is None else existing_store(path)


@app.command(rich_help_panel=START,
             epilog="Example: bahfs doctor /data/bah/store --plan plan.yaml")
@friendly
def doctor(
    store: Annotated[Path | None, typer.Argument(
        metavar="STORE",
        callback=_store_if_given, show_default=False,
        help="A store: check it is writable under its access policy, and the disk "
             "against what it still needs (default: the current folder's disk).")] = None,
    plan: Annotated[Path | None, typer.Option(
        "--plan", show_default=False,
        help="A plan file (docs/models.md) whose models to load and hash (default: the "
             "default extractors face, logmel, audio, words).")] = None,
    dask_address: Annotated[str, typer.Option(
        help="A Dask scheduler to reach (tls://host:8786; its TLS from Dask's "
             "configuration); default: none, runs use a local cluster.")] = "",
) -> None:
    """Check this machine before a run: one line per check, each failure with its fix.

    ffmpeg and ffprobe, the plan's models and hashes, the devices ONNX Runtime and
    CTranslate2 will use, the whisperX environment, the Prefect API and a Dask
    scheduler, the store writable, free disk. Exits 1 when something a run needs is
    missing.
    """
    from bahfs.doctor import run_checks

    checks = run_checks(store, plan, dask_address or None)
    for c in checks:
        if c.ok:
            typer.echo(f"✔ {c.name}: {c.detail}")
        else:
            optional = "" if c.needed else " (optional: this run does not use it)"
            typer.secho(f"✘ {c.name}: {c.detail}{optional}",
                        fg=typer.colors.RED if c.needed else typer.colors.YELLOW)
            typer.echo(f"    fix: {c.fix}")
    missing = [c for c in checks if c.needed and not c.ok]
    if missing:
        typer.secho(f"{len(missing)} thing(s) a run needs are missing", fg=typer.colors.RED,
                    err=True)
        raise typer.Exit(CHECK_FAILED)
    typer.secho("ready for a run", fg=typer.colors.GREEN)
