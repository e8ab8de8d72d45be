"""What the flows make of their tasks' ends: a video task's outcome, the tasks of a run
that stops early, a fault met outside a video.

These helpers live outside the flow modules on purpose. A deployment loads its flow
file as a top-level module (``flows/extract.py`` becomes ``extract``), and Prefect
sends the running flow with each task to the Dask scheduler, which unpickles it;
cloudpickle pickles a plain module-level function by reference to its module, which
a scheduler or worker on another host cannot import. Functions imported from here
are referenced as ``flows.outcomes``, importable wherever bahfs is installed.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from prefect.futures import PrefectFuture

from flows.job import VideoOutcome
from store.errors import BahfsError, MachineError
from store.failures import Where, classify


def task_outcome(fut: PrefectFuture[dict[str, Any]], job: dict[str, Any]) -> dict[str, Any]:
    """The task's outcome; retries exhausted (a transient machine fault that stayed),
    reported as ``failed``: the video stays pending."""
    try:
        return fut.result()
    except Exception as exc:
        why = exc.message if isinstance(exc, BahfsError) else repr(exc)
        return asdict(VideoOutcome(job["video_id"], job["participant_id"], "failed",
                                   reason=why))


def stop_unfinished(futures: dict[PrefectFuture[dict[str, Any]], dict[str, Any]]
                    ) -> list[dict[str, Any]]:
    """Cancel the tasks not finished yet (queued ones never start; on a local cluster
    running ones end with it); the outcomes of those that finished meanwhile."""
    done: list[dict[str, Any]] = []
    for fut, job in futures.items():
        wrapped = getattr(fut, "wrapped_future", None)
        if wrapped is None:
            continue
        if wrapped.done():
            done.append(task_outcome(fut, job))
            continue
        try:
            wrapped.cancel()
        except Exception as exc:  # already gone: nothing to cancel
            get_run_logger().debug("cannot cancel %s: %s", fut.task_run_id, exc)
    return done


def machine_fault(exc: Exception, store: str) -> Exception:
    """A fault met outside a video (ingesting a batch, writing the run's record) as
    :class:`MachineError` saying what to fix when it is the machine's; else ``exc``."""
    if isinstance(exc, MachineError):
        return exc
    fault = classify(exc, Where(store=Path(store)))
    return MachineError(fault.summary, path=store) if fault.owner == "machine" else exc
