"""The one extraction engine's run loop, for every way of running a run's videos:
in this process (:func:`extract_release`: threads sharing the models) or as one
Prefect task per video on Dask (the ``extract`` flow, ``flows/extract.py``, gives
:func:`run_extraction` its own :data:`Dispatch`).

:func:`run_extraction` computes the plan's feature-set ids, migrates ids that
included run options (once), lists the pending videos, has them run, summarises
their outcomes (:func:`flows.job.summarise`), words the stop message of a run that
met a fault that would hit every video, and records the run
(:func:`flows.job.record_run`). What happens to one video is
:func:`flows.job.run_video`'s. The store is a :class:`~store.backend.Store` (a folder
or a bucket), or a path or ``s3://`` address opened once here.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from extractors.migrate import migrate_feature_set_ids
from extractors.plan import Plan, as_plan
from extractors.runtime import DEFAULT_RUNTIME, Runtime
from flows.job import (
    ExtractReport,
    VideoJob,
    VideoOutcome,
    escaped,
    feature_set_ids,
    halt_message,
    pending_jobs,
    record_run_or_say_why,
    run_video,
    store_address,
    summarise,
)
from store.backend import Store
from store.errors import MachineError
from store.failures import machine_error
from store.local import as_store
from store.tables import utc_now

log = logging.getLogger("bahfs.flows")

#: Runs a run's jobs and returns their outcomes (those not started when the run
#: stopped are left out: they stay pending).
Dispatch = Callable[[list[VideoJob]], list[VideoOutcome]]


def run_extraction(store: Store | Path | str, plan: Plan, runtime: Runtime, dispatch: Dispatch, *,
                   run_id: str, started: str = "", batches: int = 0,
                   bad_batches: dict[str, str] | None = None,
                   logger: logging.Logger | logging.LoggerAdapter[Any] = log
                   ) -> ExtractReport:
    """The run loop: the ids of ``plan``'s feature sets (its extractors on
    ``runtime``), the one-time migration of ids that included run options, the
    pending videos, their outcomes from ``dispatch``, the summary, and the run's
    record (``started``: when the run began, default now; ``batches`` and
    ``bad_batches``: what its ingest did). A run stopped by a fault that would hit
    every video says so in ``report.stopped`` (recorded first where the store still
    takes it); a record that fails otherwise is raised, as
    :func:`store.failures.machine_error` says whose fault it is."""
    started = started or utc_now()
    st = as_store(store)
    fs_ids = feature_set_ids(plan, runtime)
    for old_id, new_id in migrate_feature_set_ids(st).items():
        logger.info("feature set %s is now %s (run options left the id)", old_id, new_id)
    todo, done = pending_jobs(st, fs_ids)
    logger.info("%d videos to extract, %d already in the store", len(todo), len(done))
    report = ExtractReport(run_id=run_id, feature_sets=fs_ids, skipped=done,
                           batches=batches, bad_batches=dict(bad_batches or {}))
    summarise(dispatch(todo) if todo else [], report)
    if report.halted:
        report.stopped = halt_message(report, len(todo))
    try:
        unrecorded = record_run_or_say_why(st, report, started)
    except Exception as exc:
        if (err := machine_error(exc, store_address(st))) is exc:
            raise
        raise err from exc
    if unrecorded:
        report.stopped += f"; {unrecorded}"
    return report


def in_threads(store: Store, plan: Plan, runtime: Runtime = DEFAULT_RUNTIME, videos: int = 1,
               progress: Callable[[str], None] | None = None) -> Dispatch:
    """Jobs run in this process, ``videos`` at a time in threads sharing the models;
    once one comes back ``halted``, the others are not started. A transient fault
    is not retried here: its video stays pending for the next run."""
    def dispatch(todo: list[VideoJob]) -> list[VideoOutcome]:
        outcomes: list[VideoOutcome] = []

        def one(job: VideoJob) -> None:
            if any(o.status == "halted" for o in outcomes):
                return  # not started: the run stopped
            try:
                out = run_video(store, job, plan, runtime)
            except Exception as exc:
                out = escaped(exc, store, job)
            outcomes.append(out)
            if progress:
                progress(f"[{len(outcomes)}/{len(todo)}] {job.video_id}: {out.status}")

        with ThreadPoolExecutor(max(1, videos), thread_name_prefix="bahfs-video") as pool:
            list(pool.map(one, todo))
        return outcomes

    return dispatch


def extract_release(store: Store | Path | str, plan: Plan | tuple[str, ...],
                    progress: Callable[[str], None] | None = None,
                    runtime: Runtime = DEFAULT_RUNTIME, videos: int = 1) -> ExtractReport:
    """Extract every pending video of ``store`` in this process (:func:`run_extraction`
    with :func:`in_threads`; ``plan``: an extraction plan, or extractor names with
    their default options; ``runtime``: the models' device setting, threads and
    model-call batching). A run stopped by a fault that would hit every video
    raises :class:`MachineError` saying what to fix and how many videos remain."""
    st, chosen = as_store(store), as_plan(plan)
    report = run_extraction(st, chosen, runtime,
                            in_threads(st, chosen, runtime, videos, progress),
                            run_id=uuid.uuid4().hex)
    if report.stopped:
        raise MachineError(report.stopped)
    return report
