"""``bahfs extract`` (the Prefect ``extract`` flow, for people who do not know
Prefect) and ``bahfs demo`` (the whole chain through a local Prefect server)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated

import typer

from bahfs.cli import _friendly, _print_table, app, csv_names, sample_data, stats, train


@app.command()
@_friendly
def extract(
    source: Annotated[Path, typer.Argument(help="A release folder, or an inbox of batch "
                                                "folders (each in the release layout).")],
    store: Annotated[Path, typer.Option("--store", help="Store directory.")],
    extractors: Annotated[str, typer.Option(help="Comma separated extractor names "
                                                 "(default: face,logmel,audio,words).")] = "",
    require_consent: Annotated[str, typer.Option(
        help="Consents required, comma separated.")] = "challenges,publications",
    dask_address: Annotated[str, typer.Option(
        help="Existing Dask scheduler (tcp://host:8786); default: a local cluster.")] = "",
    workers: Annotated[int, typer.Option(
        help="Local Dask worker processes (0: one per core, at most 8).")] = 0,
) -> None:
    """Ingest new batches and extract every pending video into the store (runs the
    Prefect `extract` flow here; uses PREFECT_API_URL when set, else a temporary
    local Prefect server)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.extract import extract as extract_flow

    t0 = time.perf_counter()
    report = extract_flow(source=str(source), store=str(store),
                          extractors=csv_names(extractors), consent=csv_names(require_consent),
                          dask_address=dask_address or None, dask_workers=workers or None,
                          progress=True)
    dt = time.perf_counter() - t0
    typer.echo(f"extracted {len(report['extracted'])} videos ({report['frames']} frames, "
               f"{report['frames'] / max(dt, 1e-9):.0f} frames/s over {dt:.0f} s), skipped "
               f"{len(report['skipped'])}, busy elsewhere {len(report['busy'])}, "
               f"quarantined {len(report['quarantined'])}")
    for vid, why in report["quarantined"].items():
        typer.secho(f"  quarantined {vid}: {why}", fg=typer.colors.YELLOW)


@app.command()
@_friendly
def demo(
    out: Annotated[Path, typer.Option(help="Working directory for the demo.")] = Path("demo"),
    participants: Annotated[int, typer.Option(help="Participants in the sample.")] = 6,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    epochs: Annotated[int, typer.Option(help="Training epochs for the baseline.")] = 5,
) -> None:
    """The main job end to end on a generated sample: a batch arrives in an inbox ->
    a local Prefect server and worker -> `prefect deployment run extract/extract`
    (ingest, consent, extraction on Dask into the store) -> statistics -> a TCN
    trained from the store -> metrics. Stops the server and worker it started."""
    from flows.local import LocalPrefect

    out = out.resolve()
    inbox, store, batch = out / "inbox", out / "store", out / "inbox" / "batch-001"
    if not (batch / "bahfs_truth.json").exists():
        typer.secho(f"[1/6] generating a sample batch in {batch}", bold=True)
        sample_data(batch, participants=participants, seed=seed)
    else:
        typer.secho(f"[1/6] sample batch already in {batch}", bold=True)
    typer.secho(f"[2/6] starting a local Prefect server (PREFECT_HOME={out / 'prefect'})",
                bold=True)
    t0 = time.perf_counter()
    with LocalPrefect(out / "prefect") as prefect:
        typer.echo(f"server at {prefect.api_url} ({time.perf_counter() - t0:.0f} s); UI: "
                   f"{prefect.api_url.removesuffix('/api')}")
        typer.secho("[3/6] prefect deploy (prefect.yaml: extract, ingest) and a worker",
                    bold=True)
        prefect.deploy("extract", "ingest")
        prefect.start_worker()
        params = {"source": str(inbox), "store": str(store)}
        typer.secho(f"[4/6] prefect deployment run extract/extract --params "
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
    _print_table("extract run", run.drop("detail", "feature_sets", "run_id"))
    typer.secho("[5/6] statistics", bold=True)
    stats(store)
    typer.secho("[6/6] training a TCN on face, audio and words features from the store",
                bold=True)
    train(store, model="tcn", modalities="face,audio,words", epochs=epochs,
          out=out / "runs")
    typer.secho(f"\ninbox: {inbox}\nstore: {store} (tables/, features.zarr/)\n"
                f"plots: {store / 'plots'}\nruns: {out / 'runs'}\n"
                f"prefect logs: {out / 'prefect'} (server.log, worker.log)",
                fg=typer.colors.GREEN)
