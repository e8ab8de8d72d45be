"""``bahfs extract-video`` (one video into a store of its own), ``bahfs extract`` (the Prefect
``extract`` flow into the store, for people who do not know Prefect) and ``bahfs
plan`` (what a plan would extract: every model loaded and checked, nothing written)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from bahfs.cli.common import BRING_IN, NewStoreArg, app, csv_names, friendly, local_folder

PlanOption = Annotated[Path | None, typer.Option(
    "--plan", help="A plan file (YAML): feature sets with their models and options, "
                   "instead of --extractors (docs/models.md).")]
DeviceOption = Annotated[str, typer.Option(
    "--device", help="auto, cpu, cuda (bahfs extract: one local worker per GPU) or cuda:N; "
                     "default: $BAHFS_DEVICE, else auto.")]


def _runtime(device: str) -> Any:
    """The run's :class:`extractors.runtime.Runtime`: ``--device``, else
    ``$BAHFS_DEVICE``, else auto, and ``$BAHFS_THREADS`` (read here, once); a bad
    device is a ConfigError (exit 2 with what was expected) before any model loads."""
    from extractors.runtime import Runtime, threads_per_process
    from store.devices import parse_device

    return Runtime(parse_device(device or None), threads_per_process())


def _plan(extractors: str, plan: Path | None, default: tuple[str, ...]) -> Any:
    from extractors.plan import choose_plan

    return choose_plan(csv_names(extractors), plan, default)


@app.command("extract-video", rich_help_panel=BRING_IN,
             epilog="Example: bahfs extract-video clip.mp4 --out clip.store "
                    "--extractors face,logmel")
@friendly
def extract_video(
    video: Annotated[Path, typer.Argument(show_default=False, metavar="VIDEO",
                                          help="Any video file ffmpeg reads.")],
    out: Annotated[Path, typer.Option(
        "--out", callback=local_folder,
        help="The store to write: a new or empty folder, or a store extract-video "
             "wrote (the video joins it); a local folder.")],
    extractors: Annotated[str, typer.Option(help="Comma separated extractor names "
                                                 "(default: face,logmel,audio,words).")] = "",
    plan: PlanOption = None,
    device: DeviceOption = "",
    video_id: Annotated[str, typer.Option(
        "--video-id", help="The video's id in the store (default: the file name "
                           "without its extension, made a safe name).")] = "",
    participant: Annotated[str, typer.Option(
        "--participant", help="The participant's id in the store (default: the "
                              "video id).")] = "",
) -> None:
    """Run the extractors on one video; write it into a store of its own.

    OUT is a store like any other (docs/store.md): every array has the decoded frame
    count first; FeatureReader, bahfs verify and bahfs status read it.
    """
    runtime = _runtime(device)
    import extractors as registry
    from extractors.pipeline import extract_all
    from store.one_video import describe_video, one_video_store, publish_video

    one = describe_video(video, participant_id=participant or None,
                         video_id=video_id or None)
    store = one_video_store(out, one)  # refused before any model loads
    entries = _plan(extractors, plan, registry.DEFAULT_EXTRACTORS)
    names = [e.name for e in entries]
    chosen = [e.build(runtime) for e in entries]
    t0 = time.perf_counter()
    try:  # loads the models first
        feats = extract_all(video, chosen, video_id=one.video_id,
                            participant_id=one.participant_id)
    finally:
        for e in chosen:
            e.close()
    written = [r for r in publish_video(store, one, feats) if r.outcome != "skipped"]
    n = feats[0].n_frames
    dt = time.perf_counter() - t0
    typer.echo(f"{video}: {n} frames, {len(feats)} extractors ({', '.join(names)}) in "
               f"{dt:.1f} s ({n / dt:.0f} frames/s) -> {out} (participant "
               f"{one.participant_id}, video {one.video_id}; {len(written)} feature sets "
               f"written, {len(feats) - len(written)} there already)")


@app.command(rich_help_panel=BRING_IN,
             epilog="Example: bahfs extract /data/bah/inbox /data/bah/store --device cuda")
@friendly
def extract(
    source: Annotated[Path, typer.Argument(
        metavar="SOURCE",
        show_default=False, help="A release folder, or an inbox of batch folders (each "
                                 "in the release layout).")],
    store: NewStoreArg,
    extractors: Annotated[str, typer.Option(help="Comma separated extractor names "
                                                 "(default: face,logmel,audio,words).")] = "",
    plan: PlanOption = None,
    require_consent: Annotated[str, typer.Option(
        help="Consents required, comma separated.")] = "challenges,publications",
    dask_address: Annotated[str, typer.Option(
        help="Existing Dask scheduler (tls://host:8786, or tcp:// on a trusted network); "
             "default: a local cluster.")] = "",
    dask_tls_ca: Annotated[Path | None, typer.Option(
        help="tls:// scheduler: the cluster's CA certificate (PEM); default: Dask's "
             "configuration (distributed.comm.tls).")] = None,
    dask_tls_cert: Annotated[Path | None, typer.Option(
        help="tls:// scheduler: this client's certificate (PEM), signed by that CA.")] = None,
    dask_tls_key: Annotated[Path | None, typer.Option(
        help="tls:// scheduler: this client's private key (PEM), unless in the "
             "certificate file.")] = None,
    workers: Annotated[int, typer.Option(
        help="Local Dask worker processes (0: one per core, at most 8).")] = 0,
    device: DeviceOption = "",
    videos_per_worker: Annotated[int, typer.Option(
        help="Videos in flight per worker process, their model calls shared "
             "(0: 4 on GPU workers, 1 on CPU workers).")] = 0,
) -> None:
    """Ingest new batches and extract every pending video into the store.

    Runs the Prefect `extract` flow in this process: PREFECT_API_URL when set, else a
    temporary local Prefect server; a local Dask cluster unless --dask-address.
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.settings import run_settings

    settings = run_settings(  # every setting parsed here, once: refused before any work
        extractors=csv_names(extractors) or None, plan=plan.resolve() if plan else None,
        device=device.strip().lower() or None, dask_address=dask_address or None,
        dask_workers=workers or None,
        tls=(str(dask_tls_ca) if dask_tls_ca else None,
             str(dask_tls_cert) if dask_tls_cert else None,
             str(dask_tls_key) if dask_tls_key else None),
        videos_per_worker_asked=videos_per_worker or None)
    from flows.extract import extract as extract_flow

    t0 = time.perf_counter()
    from store.backend import Store

    where = store.location if isinstance(store, Store) else str(store)
    report = extract_flow(source=str(source), store=where,
                          consent=csv_names(require_consent), progress=True,
                          settings=settings)
    dt = time.perf_counter() - t0
    typer.echo(f"extracted {len(report['extracted'])} videos ({report['frames']} frames, "
               f"{report['frames'] / max(dt, 1e-9):.0f} frames/s over {dt:.0f} s), skipped "
               f"{len(report['skipped'])}, busy elsewhere {len(report['busy'])}, "
               f"quarantined {len(report['quarantined'])}")
    for vid, why in report["quarantined"].items():
        typer.secho(f"  quarantined {vid}: {why}", fg=typer.colors.YELLOW)
    for batch, why in report["bad_batches"].items():
        typer.secho(f"  batch {batch} not ingested: {why}", fg=typer.colors.RED)


@app.command("plan", rich_help_panel=BRING_IN, epilog="Example: bahfs plan --plan plan.yaml")
@friendly
def show_plan(
    extractors: Annotated[str, typer.Option(help="Comma separated extractor names "
                                                 "(default: face,logmel,audio,words).")] = "",
    plan: PlanOption = None,
) -> None:
    """Load and check every model of a plan; print each feature set's id and arrays.

    Plan before apply: nothing is written; each feature set's model hashes are
    printed too.
    """
    import extractors as registry

    runtime = _runtime("")
    for entry in _plan(extractors, plan, registry.DEFAULT_EXTRACTORS):
        built = entry.build(runtime)
        try:
            built.load()  # the models loaded and checked, as a worker does
            spec = built.spec()
        finally:
            built.close()
        typer.echo(f"{spec.id}  (extractor {spec.extractor})")
        typer.echo(f"  model sha256: {spec.model_sha256}")
        for a in spec.arrays:
            typer.echo(f"  {a.name}: {a.dtype} (frames, {', '.join(map(str, a.shape))})"
                       .replace(", )", ")") + (f"  {a.doc}" if a.doc else ""))
