"""The ``extract`` flow: pick up new consented batches, ingest them, extract every
pending video (one Prefect task per video, on Dask), write the store, report.

Run it as a deployment (``prefect deployment run extract/extract``, see
``prefect.yaml`` and ``docs/operations.md``), through ``bahfs extract``, or by
calling :func:`extract` in Python. The flow only orchestrates: ingest tasks, one
task per video, the summary. The work is in ``flows.settings`` (the run's settings,
parsed once), ``flows.batches`` (finding and merging batches), ``flows.engine`` (the
run loop, shared with :func:`flows.engine.extract_release`), ``flows.job`` (one
video) and ``store`` (tables, locks, catalog).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import flow_run
from pydantic import Field

from extractors.plan import Plan
from extractors.runtime import DEFAULT_RUNTIME, Runtime
from flows.batches import Batch, find_batches, ingest_batch, pending_batches
from flows.cluster import dask_runner, require_gpu_workers
from flows.engine import Dispatch, run_extraction
from flows.job import ExtractReport, VideoJob, VideoOutcome, run_video
from flows.outcomes import stop_unfinished, task_outcome, worth_retrying
from flows.placement import gpu_annotation
from flows.report import Progress, summary_markdown
from flows.settings import (
    RunSettings,
    consent_policy,
    open_run_store,
    run_settings,
    source_and_store,
)
from store.backend import Store
from store.errors import ConfigError, DatasetLayoutError, ExtractionError, MachineError
from store.failures import machine_error
from store.ingest import IngestReport
from store.local import as_store
from store.tables import utc_now


@task(name="ingest-batch", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE,
      task_run_name="ingest-{batch.name}")
def ingest_batch_task(batch: Batch, store: Store, consent: list[str] | None
                      ) -> IngestReport:
    report = ingest_batch(batch, store, consent_policy(consent))
    get_run_logger().info("batch %s: %d videos ingested, %d participants excluded, "
                          "%d videos quarantined", batch.name, report.videos,
                          len(report.excluded), len(report.quarantined))
    return report


def ingest_new_batches(source: str, store: Store | str, consent: list[str] | None,
                       settle_seconds: float) -> tuple[list[Batch], dict[str, str]]:
    """Ingest every batch under ``source`` that the store (a :class:`Store`, or where
    :func:`flows.settings.open_run_store` opens one) has not seen (as tasks); a
    batch that cannot be read is reported and skipped (it stays pending: the next run
    tries it again) while the others land. Returns the ingested and the bad ones."""
    logger = get_run_logger()
    store = store if isinstance(store, Store) else open_run_store(store)
    found = find_batches(Path(source), settle_seconds)
    new = pending_batches(store, found)
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
      task_run_name="extract-{job.video_id}", retry_condition_fn=worth_retrying)
def extract_video_task(store: Store, job: VideoJob, plan: Plan, runtime: Runtime
                       ) -> VideoOutcome:
    """One video, end to end (decode, every extractor, publish; ``store`` is pickled to the
    worker: a folder's path, or a bucket's address, endpoint and region, the credentials
    read there), its models on ``runtime`` (device, threads, rows per model call
    gathered across the worker's videos in flight), loaded once per worker process and
    reused. Whose fault a failure is is decided in :func:`flows.job.run_video`: the
    input's (quarantined) and bugs come back as outcomes, and so does a machine fault
    that will hit every video (``halted``: the flow stops); a transient machine fault
    (``MachineError``: out of memory, an I/O hiccup) is retried
    (:func:`flows.outcomes.worth_retrying`), then reported as failed: the video stays
    pending; anything else it raises is classified the same way
    (:func:`flows.outcomes.task_outcome`)."""
    return run_video(store, job, plan, runtime)


@flow(name="extract-videos", description="One task per video, on the flow's task runner.")
def extract_videos(store: str, jobs: list[VideoJob], plan: Plan,
                   runtime: Runtime = DEFAULT_RUNTIME, progress: bool = False,
                   gpu_tasks: bool = False) -> list[VideoOutcome]:
    """``store``: the store's folder or ``s3://`` address (a flow's parameters are
    recorded by the Prefect server: an address, never a store object with its
    credentials), opened here once; ``gpu_tasks``: each task asks for one ``GPU``
    worker resource (a GPU worker offers one per video it may have in flight);
    ``runtime``: how each task's models run. Once a video comes back ``halted``, the
    tasks not finished are cancelled."""
    if gpu_tasks:
        get_run_logger().info("%s Dask workers offer a GPU", require_gpu_workers())
    st = as_store(store)
    with gpu_annotation(gpu_tasks):
        futures: dict[PrefectFuture[VideoOutcome], VideoJob] = {
            extract_video_task.submit(st, job, plan, runtime): job for job in jobs}
    outcomes: list[VideoOutcome] = []
    with Progress(len(jobs), show=progress) as bar:
        for fut in as_completed(list(futures)):
            outcomes.append(task_outcome(fut, futures.pop(fut), st))
            bar.advance(outcomes[-1].video_id, outcomes[-1].status)
            if outcomes[-1].status == "halted":  # every later video would fail too
                get_run_logger().error("stopping the run: %s", outcomes[-1].reason)
                outcomes += stop_unfinished(futures, st)
                break
    return outcomes


def on_dask(store: Store, run: RunSettings, progress: bool) -> Dispatch:
    """The run's jobs as one task per video (:func:`extract_videos`) on its Dask
    cluster: an existing scheduler, or a local one started for them."""
    def dispatch(jobs: list[VideoJob]) -> list[VideoOutcome]:
        runner = dask_runner(run.where.address, run.workers, run.where.gpus, run.security(),
                             run.videos)
        return extract_videos.with_options(task_runner=runner)(
            store.location, jobs, run.plan, run.task_runtime(), progress, run.where.gpu_tasks)

    return dispatch


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
    settings: RunSettings | None = None,
) -> dict[str, Any]:
    """``source``: a release folder or an inbox of batch folders; ``store``: the store
    directory, or ``s3://bucket/prefix`` (the AWS settings of the process running the flow;
    each Dask worker reads its own credentials) (defaults: ``$BAHFS_INBOX``,
    ``$BAHFS_STORE``, else ``data/inbox``, ``data/store``); ``extractors``: registered names
    (default: face, logmel, audio, words); ``plan``: instead, a plan file (YAML: feature
    sets with their models and options, ``docs/models.md``) readable where the flow runs;
    ``consent``: consents required (default: challenges and publications); ``dask_address``:
    an existing scheduler (``tcp://host:8786``), else a LocalCluster of ``dask_workers``
    processes (default: one per core, at most 8); ``settle_seconds``: ignore batches changed
    more recently (still being copied); ``progress``: draw a progress bar on stderr;
    ``device``: ``auto``, ``cpu``, ``cuda`` (one local worker per GPU) or ``cuda:N`` (GPU N
    alone), default ``$BAHFS_DEVICE`` (read here, once), else ``auto``; every task is given
    it (with its thread count), on local workers and on an existing scheduler's alike;
    ``dask_tls_ca``, ``dask_tls_cert``, ``dask_tls_key``: PEM files, readable where the flow
    runs, for a ``tls://`` scheduler (default: Dask's configured ones;
    :mod:`flows.security`); ``videos_per_worker``: videos in flight in each worker process,
    their model calls gathered into shared calls (:mod:`extractors.batching`); default 4 on
    GPU workers, 1 on CPU workers (on an existing scheduler, start each GPU worker with
    ``--nthreads N --resources GPU=N`` for N in flight); ``settings``: instead of
    ``extractors`` to ``videos_per_worker``, the run's settings already parsed
    (:func:`flows.settings.run_settings`: what ``bahfs extract`` passes)."""
    started = utc_now()
    asked = (extractors, plan, dask_address, dask_workers, device, dask_tls_ca,
             dask_tls_cert, dask_tls_key, videos_per_worker)
    if settings is not None and any(x is not None for x in asked):
        raise ConfigError("the extract flow was given settings and separate options",
                          expected="settings, or the separate options, not both")
    logger = get_run_logger()
    run = settings or run_settings(  # a clear error before any work
        extractors=extractors, plan=plan, device=device, dask_address=dask_address,
        dask_workers=dask_workers, tls=(dask_tls_ca, dask_tls_cert, dask_tls_key),
        videos_per_worker_asked=videos_per_worker)
    if run.where.gpus:
        logger.info("device %s: one Dask worker per GPU (CUDA_VISIBLE_DEVICES %s)",
                    run.device, ", ".join(run.where.gpus))
    source, store = source_and_store(source, store)
    try:
        st = open_run_store(store)
        new, bad = ingest_new_batches(source, st, consent, settle_seconds)
    except Exception as exc:
        if (err := machine_error(exc, store)) is exc:
            raise
        raise err from exc
    report = run_extraction(st, run.plan, run.host_runtime(), on_dask(st, run, progress),
                            run_id=str(flow_run.get_id() or ""), started=started,
                            batches=len(new), bad_batches=bad, logger=logger)
    create_markdown_artifact(summary_markdown(report), key="extract-summary",
                             description="What this extract run did")
    log_report(report)
    if report.stopped:
        raise MachineError(report.stopped)
    if report.failed or report.bugs:
        raise ExtractionError(
            f"{len(report.failed)} videos failed after retries (the machine's fault: still "
            f"pending), {len(report.bugs)} hit a bug (tracebacks saved in the store's bugs "
            "table, `bahfs quarantine bugs STORE`): "
            + "; ".join(f"{v}: {r}" for v, r in {**report.failed, **report.bugs}.items()),
            path=store)
    return report.as_dict()


def log_report(report: ExtractReport) -> None:
    """The run's summary in the flow run's log."""
    logger = get_run_logger()
    logger.info("extracted %d videos (%d frames), skipped %d, busy elsewhere %d, "
                "quarantined %d, failed (machine, still pending) %d, bugs %d",
                len(report.extracted), report.frames, len(report.skipped),
                len(report.busy), len(report.quarantined), len(report.failed),
                len(report.bugs))
    for vid, why in report.quarantined.items():
        logger.warning("quarantined %s: %s", vid, why)
    for vid, why in report.bugs.items():
        logger.error("bug on %s (traceback in the store's bugs table): %s", vid, why)
