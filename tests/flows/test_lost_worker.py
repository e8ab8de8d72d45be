"""Every way a video's task can end goes through the one classification
(``flows.outcomes``): a worker process killed under a running task is the machine's
fault (the video stays pending, the next run takes it), never the video's and never a
bug; only transient machine faults are worth a task's retries. The kill is real: a
Dask LocalCluster whose worker process is sent SIGKILL while it runs the task."""

from __future__ import annotations

import errno
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import dask
import pytest
from distributed import Client, LocalCluster
from distributed.comm.core import CommClosedError
from distributed.scheduler import KilledWorker
from prefect.states import Failed
from prefect_dask.task_runners import PrefectDaskFuture

from flows.job import VideoJob
from flows.outcomes import task_outcome, worker_lost, worth_retrying
from store.errors import DeviceError, MachineError
from store.failures import classify

JOB = VideoJob("P001__Visite_1__Q1", "P001", "/data/release", "q1.mp4", 10)


def _running(client: Any, timeout: float = 30.0) -> int:
    """The pid of the worker process once it runs a task."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(client.processing().values()):
            return int(next(iter(client.run(os.getpid).values())))
        time.sleep(0.05)
    raise AssertionError("the task never started")


def test_a_killed_worker_is_the_machines_fault_and_the_video_stays_pending(
        tmp_path: Path) -> None:
    cluster_type: Any = LocalCluster  # distributed is untyped
    client_type: Any = Client
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            cluster_type(n_workers=1, threads_per_worker=1, processes=True,
                         dashboard_address=None) as cluster, client_type(cluster) as client:
        running = client.submit(time.sleep, 60, pure=False)
        os.kill(_running(client), signal.SIGKILL)
        fut: PrefectDaskFuture[Any] = PrefectDaskFuture(uuid.uuid4(), running)
        out = task_outcome(fut, JOB, tmp_path / "store")
        with pytest.raises(KilledWorker):
            running.result(timeout=5)
    assert (out.status, out.kind) == ("failed", "worker lost")
    assert out.video_id == JOB.video_id and not out.traceback
    assert "KilledWorker" in out.reason and f"video: {JOB.video_id}" in out.reason


@pytest.mark.parametrize(("exc", "lost"), [
    (CommClosedError("in <TCP (closed)>: Stream is closed"), True),
    (OSError(errno.EIO, "Input/output error"), False),
    (TypeError("run_video() got an unexpected keyword argument"), False),
])
def test_a_lost_worker_is_recognised_by_type(exc: BaseException, lost: bool) -> None:
    assert worker_lost(exc) is lost
    fault = classify(exc, lost=worker_lost)
    if lost:
        assert (fault.owner, fault.kind, fault.retry, fault.stop) == (
            "machine", "worker lost", True, False)
    else:
        assert fault.kind != "worker lost"


@pytest.mark.parametrize(("exc", "retried"), [
    (MachineError("out of memory (fix: free memory)"), True),
    (DeviceError("CUDA out of memory"), True),
    (OSError(errno.EIO, "Input/output error"), True),
    (TypeError("unsupported operand"), False),  # a bug: the same every time
    (OSError(errno.ENOSPC, "No space left on device"), False),  # stops the run instead
])
def test_only_transient_faults_are_worth_a_retry(exc: Exception, retried: bool) -> None:
    assert worth_retrying(None, None, Failed(data=exc)) is retried
