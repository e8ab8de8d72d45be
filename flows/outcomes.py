"""What the flows make of their tasks' ends: a video task's outcome, the tasks of a run
that stops early, and what says a worker was lost.

A task that raises (after its retries) goes through the one classification
(:func:`flows.job.escaped`, :func:`store.failures.classify`): a transient machine
fault that stayed and a lost worker leave the video ``failed`` (the machine's fault:
still pending, the next run takes it again), a bug in the task's code lands in the
store's bugs table with its traceback.

These helpers live outside the flow modules on purpose. A deployment loads its flow
file as a top-level module (``flows/extract.py`` becomes ``extract``), and Prefect
sends the running flow with each task to the Dask scheduler, which unpickles it;
cloudpickle pickles a plain module-level function by reference to its module, which
a scheduler or worker on another host cannot import. Functions imported from here
are referenced as ``flows.outcomes``, importable wherever bahfs is installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distributed.comm.core import CommClosedError
from distributed.core import RPCClosed
from distributed.scheduler import KilledWorker
from prefect import get_run_logger
from prefect.client.schemas.objects import State
from prefect.exceptions import CrashedRun
from prefect.futures import PrefectFuture

from extractors.runtime import device_fault_kind
from flows.job import VideoJob, VideoOutcome, escaped
from store.backend import Store
from store.failures import classify

#: What Dask and Prefect raise for work whose worker process is gone: the scheduler
#: gave up on a task whose workers kept dying (``KilledWorker``), a connection to a
#: worker or the scheduler closed under it, a task run that crashed.
LOST_WORKER: tuple[type[BaseException], ...] = (KilledWorker, CommClosedError, RPCClosed,
                                                CrashedRun)


def worker_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the worker running a task was lost (the machine's fault,
    not the video's)."""
    return isinstance(exc, LOST_WORKER)


def worth_retrying(task: Any, task_run: Any, state: State[Any]) -> bool:
    """A video task's retry condition (Prefect's ``retry_condition_fn``): retried
    only when what it raised is a transient machine fault (out of memory, an I/O
    hiccup); a bug, or a fault that will hit every video, is not."""
    exc = state.data
    if not isinstance(exc, Exception):
        return False
    fault = classify(exc, device=device_fault_kind, lost=worker_lost)
    return fault.owner == "machine" and fault.retry


def task_outcome(fut: PrefectFuture[VideoOutcome], job: VideoJob,
                 store: Store | str | Path) -> VideoOutcome:
    """The task's outcome; an exception it raised, classified (:func:`escaped`)."""
    try:
        return fut.result()
    except Exception as exc:
        return escaped(exc, store, job, worker_lost)


def stop_unfinished(futures: dict[PrefectFuture[VideoOutcome], VideoJob],
                    store: Store | str | Path) -> list[VideoOutcome]:
    """Cancel the tasks not finished yet (queued ones never start; on a local cluster
    running ones end with it); the outcomes of those that finished meanwhile."""
    done: list[VideoOutcome] = []
    for fut, job in futures.items():
        wrapped = getattr(fut, "wrapped_future", None)
        if wrapped is None:
            continue
        if wrapped.done():
            done.append(task_outcome(fut, job, store))
            continue
        try:
            wrapped.cancel()
        except Exception as exc:  # already gone: nothing to cancel
            get_run_logger().debug("cannot cancel %s: %s", fut.task_run_id, exc)
    return done
