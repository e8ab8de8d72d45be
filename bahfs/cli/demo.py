"""``bahfs demo``: the main job end to end on a generated sample, through a local
Prefect server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from bahfs.cli.common import START, app, friendly, print_table
from store.errors import BahfsError


@app.command(rich_help_panel=START, epilog="Example: bahfs demo --out /tmp/bah-demo")
@friendly
def demo(
    out: Annotated[Path, typer.Option(help="Working directory for the demo.")] = Path("demo"),
    participants: Annotated[int, typer.Option(help="Participants in the sample.")] = 6,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    epochs: Annotated[int, typer.Option(help="Training epochs for the baseline.")] = 5,
) -> None:
    """The main job end to end on a generated sample, through a local Prefect server.

    A batch arrives in an inbox -> a local Prefect server and worker -> `prefect
    deployment run extract/extract` (ingest, consent, extraction on Dask into the
    store) -> statistics -> a TCN trained from the store -> metrics -> the cue table
    (which face features carry which annotated cue). Stops the server and worker it
    started.
    """
    from bahfs.cli.cues import cue_table  # imported here: `bahfs --help` lists them later
    from bahfs.cli.models import train
    from bahfs.cli.samples import sample_data
    from bahfs.cli.stats import stats
    from flows.local import LocalPrefect

    out = out.resolve()
    inbox, store, batch = out / "inbox", out / "store", out / "inbox" / "batch-001"
    if not (batch / "bahfs_truth.json").exists():
        typer.secho(f"[1/7] generating a sample batch in {batch}", bold=True)
        sample_data(batch, participants=participants, seed=seed)
    else:
        typer.secho(f"[1/7] sample batch already in {batch}", bold=True)
    typer.secho(f"[2/7] starting a local Prefect server (PREFECT_HOME={out / 'prefect'})",
                bold=True)
    t0 = time.perf_counter()
    with LocalPrefect(out / "prefect") as prefect:
        typer.echo(f"server at {prefect.api_url} ({time.perf_counter() - t0:.0f} s); UI: "
                   f"{prefect.api_url.removesuffix('/api')}")
        typer.secho("[3/7] prefect deploy (prefect.yaml: extract, ingest) and a worker",
                    bold=True)
        prefect.deploy("extract", "ingest")
        prefect.start_worker()
        params = {"source": str(inbox), "store": str(store)}
        typer.secho(f"[4/7] prefect deployment run extract/extract --params "
                    f"'{json.dumps(params)}' --watch", bold=True)
        t1 = time.perf_counter()
        done = prefect.follow_worker("Task run 'extract-", lambda line: typer.echo(
            f"  [{time.perf_counter() - t1:5.0f} s] "
            + line.split("Task run '", 1)[-1].replace("' - ", ": ", 1)))
        try:
            prefect.run("extract/extract", params, stream=True)
        finally:
            done.set()
        typer.echo(f"flow run completed in {time.perf_counter() - t1:.0f} s")
    from store.tables import read_table

    run = read_table(store, "extract_runs").tail(1)
    print_table("extract run", run.drop("detail", "feature_sets", "run_id"))
    typer.secho("[5/7] statistics", bold=True)
    stats(store)
    typer.secho("[6/7] training a TCN on face, audio and words features from the store",
                bold=True)
    train(store, model="tcn", modalities="face,audio,words", epochs=epochs,
          out=out / "runs")
    typer.secho("[7/7] which face features carry which annotated cue "
                "(bahfs cues evaluate --feature-set face --max-width 8)", bold=True)
    try:
        cue_table(store, "face", min_segments=3, top=3, max_width=8)  # not the embedding
    except BahfsError as exc:  # too few coded segments in a small sample
        typer.echo(f"no cue table: {exc}")
    typer.secho(f"\ninbox: {inbox}\nstore: {store} (tables/, features.zarr/)\n"
                f"plots: {store / 'plots'}\nruns: {out / 'runs'}\n"
                f"prefect logs: {out / 'prefect'} (server.log, worker.log)",
                fg=typer.colors.GREEN)
    from bahfs.review.site import ReviewOptions, describe, review_site

    runs = sorted((out / "runs").glob("*/model.pt"), key=lambda p: p.stat().st_mtime)
    site = review_site(store, out / "review", ReviewOptions(run=runs[-1].parent if runs
                                                             else None))
    typer.secho(f"review site (open in a browser, offline): {describe(site)}",
                fg=typer.colors.GREEN)
