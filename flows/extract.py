"""The ``extract`` flow: pick up new consented batches, ingest them, extract every
pending video (one Prefect task per video, on Dask), write the store, report.

Run it as a deployment (``prefect deployment run extract/extract``, see
``prefect.yaml`` and ``docs/operations.md``), through ``bahfs extract``, or by
calling :func:`extract` in Python. The flow only orchestrates: the work is in
``flows.batches`` (finding and merging batches), ``flows.job`` (one video)
and ``store`` (tables, locks, catalog).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import flow_run
from pydantic import Field

from extractors import DEFAULT_EXTRACTORS
from extractors.migrate import migrate_feature_set_ids
from extractors.plan import as_plan, plan_from_names, plan_to_json, read_plan
from extractors.runtime import Runtime
from flows.batches import Batch, find_batches, ingest_batch, pending_batches
from flows.common import (
    Progress,
    batch_rows,
    consent_policy,
    dask_runner,
    gpu_annotation,
    placement,
    require_gpu_workers,
    source_and_store,
    summary_markdown,
    task_threads,
)
from flows.common import videos_per_worker as videos_per_worker_of
from flows.job import (
    ExtractReport,
    VideoJob,
    VideoOutcome,
    feature_set_ids,
    halt_message,
    pending_jobs,
    record_run_or_say_why,
    run_video,
    summarise,
)
from flows.outcomes import machine_fault, stop_unfinished, task_outcome
from flows.security import dask_security
from store.access import make_store_dir
from store.devices import parse_device
from store.errors import DatasetLayoutError, ExtractionError, MachineError
from store.tables import utc_now


@task(name="ingest-batch", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE,
      task_run_name="ingest-{batch.name}")
def ingest_batch_task(batch: Batch, store: str, consent: list[str] | None
                      ) -> dict[str, Any]:
    report = ingest_batch(batch, Path(store), consent_policy(consent))
    get_run_logger().info("batch %s: %d videos ingested, %d participants excluded, "
                          "%d videos quarantined", batch.name, report.videos,
                          len(report.excluded), len(report.quarantined))
    return asdict(report)


def ingest_new_batches(source: str, store: str, consent: list[str] | None,
                       settle_seconds: float) -> tuple[list[Batch], dict[str, str]]:
    """Ingest every batch under ``source`` that the store has not seen (as tasks); a
    batch that cannot be read is reported and skipped (it stays pending: the next run
    tries it again) while the others land. Returns the ingested and the bad ones."""
    logger = get_run_logger()
    make_store_dir(store)  # with the store's access policy (store/access.py)
    found = find_batches(Path(source), settle_seconds)
    new = pending_batches(Path(store), found)
    logger.info("%d batches under %s, %d new or changed", len(found), source, len(new))
    done, bad = [], {}
    for batch in new:  # one at a time: each merges into the same tables
        try:
            ingest_batch_task(batch, store, consent)
        except DatasetLayoutError as exc:
            logger.error("batch %s not ingested: %s", batch.name, exc)
            bad[batch.name] = str(exc)
        else:
            done.append(batch)
    return done, bad


@task(name="extract-video", retries=2, retry_delay_seconds=[5, 30], cache_policy=NO_CACHE,
      task_run_name="extract-{job[video_id]}")
def extract_video_task(store: str, job: dict[str, Any], plan: list[dict[str, str]],
                       device: str = "auto", threads: int = 0, batch: int = 0
                       ) -> dict[str, Any]:
    """One video, end to end (decode, every extractor, publish). Models are loaded
    once per worker process and reused. Whose fault a failure is is decided in
    :func:`flows.job.run_video`: the input's (quarantined) and bugs come back as
    outcomes, and so does a machine fault that will hit every video (``halted``:
    the flow stops); a transient machine fault (``MachineError``: out of memory, an
    I/O hiccup) is retried, then reported as failed: the video stays pending.
    ``batch``: rows per model call gathered across the worker's videos in flight."""
    runtime = Runtime(parse_device(device), threads, batch)
    return asdict(run_video(store, VideoJob(**job), as_plan(plan), runtime))


@flow(name="extract-videos", description="One task per video, on the flow's task runner.")
def extract_videos(store: str, jobs: list[dict[str, Any]], plan: list[dict[str, str]],
                   progress: bool = False, gpu_tasks: bool = False, device: str = "auto",
                   threads: int = 0, batch: int = 0) -> list[dict[str, Any]]:
    """``gpu_tasks``: each task asks for one ``GPU`` worker resource (a GPU worker
    offers one per video it may have in flight); ``device``, ``threads`` and
    ``batch`` (rows per model call across a worker's videos): how each task's models
    run."""
    if gpu_tasks:
        get_run_logger().info("%s Dask workers offer a GPU", require_gpu_workers())
    with gpu_annotation(gpu_tasks):
        futures: dict[PrefectFuture[dict[str, Any]], dict[str, Any]] = {
            extract_video_task.submit(store, job, plan, device, threads, batch): job
            for job in jobs}
    outcomes: list[dict[str, Any]] = []
    with Progress(len(jobs), show=progress) as bar:
        for fut in as_completed(list(futures)):
            outcomes.append(task_outcome(fut, futures.pop(fut)))
            bar.advance(outcomes[-1]["video_id"], outcomes[-1]["status"])
            if outcomes[-1]["status"] == "halted":  # every later video would fail too
                get_run_logger().error("stopping the run: %s", outcomes[-1]["reason"])
                outcomes += stop_unfinished(futures)
                break
    return outcomes


@flow(name="extract", description="Ingest new consented batches, extract every pending "
      "video into the feature store, and report.")
def extract(
    source: str | None = None,
    store: str | None = None,
    extractors: list[str] | None = None,
    plan: str | None = None,
    consent: list[str] | None = None,
    dask_address: str | None = None,
    dask_workers: Annotated[int | None, Field(ge=1, le=256)] = None,
    settle_seconds: Annotated[float, Field(ge=0)] = 0.0,
    progress: bool = False,
    device: str | None = None,
    dask_tls_ca: str | None = None,
    dask_tls_cert: str | None = None,
    dask_tls_key: str | None = None,
    videos_per_worker: Annotated[int | None, Field(ge=1, le=64)] = None,
) -> dict[str, Any]:
    """``source``: a release folder or an inbox of batch folders; ``store``: the store
    directory (defaults: ``$BAHFS_INBOX``, ``$BAHFS_STORE``, else ``data/inbox``,
    ``data/store``); ``extractors``: registered names (default: face, logmel, audio, words);
    ``plan``: instead, a plan file (YAML: feature sets with their models and options,
    ``docs/models.md``) readable where the flow runs;
    ``consent``: consents required (default: challenges and publications);
    ``dask_address``: an existing scheduler (``tcp://host:8786``), else a LocalCluster
    of ``dask_workers`` processes (default: one per core, at most 8); ``settle_seconds``:
    ignore batches changed more recently (still being copied); ``progress``: draw a
    progress bar on stderr; ``device``: ``auto``, ``cpu``, ``cuda`` (one local worker
    per GPU) or ``cuda:N`` (GPU N alone), default ``$BAHFS_DEVICE`` (read here, once),
    else ``auto``; every task is given it (with its thread count), on local workers
    and on an existing scheduler's alike; ``dask_tls_ca``, ``dask_tls_cert``,
    ``dask_tls_key``: PEM files, readable where the flow runs, for a ``tls://``
    scheduler (default: Dask's configured ones; :mod:`flows.security`);
    ``videos_per_worker``: videos in flight in each worker process, their model calls
    gathered into shared calls (:mod:`extractors.batching`); default 4 on GPU workers,
    1 on CPU workers (on an existing scheduler, start each GPU worker with
    ``--nthreads N --resources GPU=N`` for N in flight)."""
    logger = get_run_logger()
    started = utc_now()
    setting = parse_device(device)  # a clear error before any work; None: $BAHFS_DEVICE
    where = placement(dask_address, setting)  # cuda without a GPU stops here
    security = dask_security(where.address, dask_tls_ca, dask_tls_cert, dask_tls_key)
    threads = task_threads(where, dask_workers)
    videos = videos_per_worker_of(videos_per_worker, bool(where.gpus or where.gpu_tasks))
    if where.gpus:
        logger.info("device %s: one Dask worker per GPU (CUDA_VISIBLE_DEVICES %s)",
                    setting, ", ".join(where.gpus))
    chosen = read_plan(Path(plan)) if plan else plan_from_names(
        extractors or DEFAULT_EXTRACTORS)
    source, store = source_and_store(source, store)
    try:
        new, bad = ingest_new_batches(source, store, consent, settle_seconds)
    except Exception as exc:
        raise machine_fault(exc, store) from exc
    fs_ids = feature_set_ids(chosen, Runtime(setting, threads))
    for old_id, new_id in migrate_feature_set_ids(Path(store)).items():
        logger.info("feature set %s is now %s (run options left the id)", old_id, new_id)
    todo, done = pending_jobs(Path(store), fs_ids)
    logger.info("%d videos to extract, %d already in the store", len(todo), len(done))
    outcomes: list[dict[str, Any]] = []
    if todo:
        runner = dask_runner(where.address, dask_workers, where.gpus, security, videos)
        outcomes = extract_videos.with_options(task_runner=runner)(
            store, [asdict(j) for j in todo], plan_to_json(chosen), progress,
            where.gpu_tasks, where.device, threads, batch_rows(videos))
    report = ExtractReport(run_id=str(flow_run.get_id() or ""), feature_sets=fs_ids,
                           skipped=done, batches=len(new), bad_batches=bad)
    summarise([VideoOutcome(**o) for o in outcomes], report)
    halted = halt_message(report, len(todo)) if report.halted else ""
    try:
        unrecorded = record_run_or_say_why(Path(store), report, started)
    except Exception as exc:
        raise machine_fault(exc, store) from exc
    create_markdown_artifact(summary_markdown(report), key="extract-summary",
                             description="What this extract run did")
    logger.info("extracted %d videos (%d frames), skipped %d, busy elsewhere %d, "
                "quarantined %d, failed (machine, still pending) %d, bugs %d",
                len(report.extracted), report.frames, len(report.skipped),
                len(report.busy), len(report.quarantined), len(report.failed),
                len(report.bugs))
    for vid, why in report.quarantined.items():
        logger.warning("quarantined %s: %s", vid, why)
    for vid, why in report.bugs.items():
        logger.error("bug on %s (traceback in the store's bugs table): %s", vid, why)
    if halted:
        raise MachineError(halted + (f"; {unrecorded}" if unrecorded else ""))
    if report.failed or report.bugs:
        raise ExtractionError(
            f"{len(report.failed)} videos failed after retries (the machine's fault: still "
            f"pending), {len(report.bugs)} hit a bug (tracebacks saved in the store's bugs "
            "table, `bahfs quarantine bugs STORE`): "
            + "; ".join(f"{v}: {r}" for v, r in {**report.failed, **report.bugs}.items()),
            path=store)
    return report.as_dict()
