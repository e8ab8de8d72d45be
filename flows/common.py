"""What the flows share: the Dask task runner and where tasks run (one worker per
GPU when the device setting asks for CUDA), progress (a Prefect progress artifact in
the UI, and a bar on stderr for the CLI), the consent policy and the run summary."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from types import TracebackType
from typing import Any, cast
from uuid import UUID

from dask.base import annotate
from distributed import Security
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.task_runners import TaskRunner
from prefect_dask.task_runners import DaskTaskRunner

from extractors.runtime import threads_per_process
from flows.job import ExtractReport
from store.consent import ConsentPolicy
from store.devices import DeviceSetting
from store.errors import ConfigError, DeviceError

log = logging.getLogger("bahfs.flows")
#: the device settings a local GPU cluster's tasks are given (each sees its GPU alone)
AUTO, CUDA = DeviceSetting("auto"), DeviceSetting("cuda")

#: An existing Dask scheduler to use instead of starting a LocalCluster.
DASK_ADDRESS_ENV = "BAHFS_DASK_ADDRESS"
#: Where the flows look when a run names no source or store (set them in the
#: worker's environment; relative paths are taken from the project directory).
INBOX_ENV, STORE_ENV = "BAHFS_INBOX", "BAHFS_STORE"
#: The Dask worker resource a GPU worker offers (one per video it may have in flight)
#: and every extraction task asks one of.
GPU_RESOURCE = "GPU"
VISIBLE_ENV = "CUDA_VISIBLE_DEVICES"
#: Videos in flight per GPU worker when the run does not say: four videos' 16-frame
#: CenterFace requests fill a 64-row call, and on the CPU (benchmarks/worker.py) the
#: model thread's idle time fell from 10 % of the wall time with one video to 4-6 %
#: with two or four (on a GPU, where model calls are short against a video's CPU work,
#: there is more to overlap; benchmarks/gpu.sh measures 1, 2, 4 and 8). CPU workers run
#: one video each (one worker per core already keeps the cores busy).
GPU_VIDEOS_PER_WORKER = 4
#: Rows per model call per video in flight (CenterFace's default call is 16 frames).
ROWS_PER_VIDEO = 16


def videos_per_worker(requested: int | None, where_gpus: bool) -> int:
    """Videos in flight per worker process: as asked, else
    :data:`GPU_VIDEOS_PER_WORKER` on GPU workers and 1 on CPU workers."""
    if requested is not None:
        if requested < 1:
            raise ConfigError(f"videos_per_worker={requested}", expected="1 or more")
        return requested
    return GPU_VIDEOS_PER_WORKER if where_gpus else 1


def batch_rows(videos: int) -> int:
    """Rows per model call gathered across ``videos`` in flight (0 for one video:
    its own calls, no model thread; :mod:`extractors.batching`)."""
    return ROWS_PER_VIDEO * videos if videos > 1 else 0


def source_and_store(source: str | None, store: str | None) -> tuple[str, str]:
    """The run's parameters, else ``$BAHFS_INBOX``/``$BAHFS_STORE``, else
    ``data/inbox`` and ``data/store``."""
    return (source or os.environ.get(INBOX_ENV) or "data/inbox",
            store or os.environ.get(STORE_ENV) or "data/store")


def consent_policy(consent: list[str] | None) -> ConsentPolicy:
    """The consents asked for, else the policy's default (challenges and publications)."""
    return ConsentPolicy(require=tuple(consent)) if consent else ConsentPolicy()


def local_workers(requested: int | None) -> int:
    """Local Dask worker processes: as asked, else one per core, at most 8 (each
    holds its own copy of the models). Measured on 2 cores (benchmarks/flow.py):
    two single-threaded workers beat one worker with two threads."""
    return requested or max(1, min(8, os.cpu_count() or 1))


def scheduler_address(address: str | None) -> str | None:
    """An existing scheduler to use (``address``, else ``$BAHFS_DASK_ADDRESS``), or
    None for a local cluster."""
    address = address or os.environ.get(DASK_ADDRESS_ENV) or None
    if address and "://" not in address:
        raise ConfigError(f"dask address {address!r} has no scheme",
                          expected="tls://host:8786 (or tcp://host:8786)")
    return address


def listed_gpus() -> int:
    """How many GPUs ``nvidia-smi -L`` lists: 0 without nvidia-smi or when it fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return 0
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=30,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("nvidia-smi -L failed, no GPU workers: %s", exc)
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def local_gpus(setting: DeviceSetting, gpu_count: int | None = None) -> list[str]:
    """The GPUs the local cluster gets one worker each for, as ``CUDA_VISIBLE_DEVICES``
    values, from the run's device setting: ``cpu``: none; ``auto``: every GPU there
    is; ``cuda``: every GPU, at least one; ``cuda:N``: GPU N alone. The GPUs there
    are: ``$CUDA_VISIBLE_DEVICES`` when set, else the first ``gpu_count`` (default:
    what ``nvidia-smi -L`` lists)."""
    text = str(setting)
    if setting.kind == "cpu":
        return []
    visible = os.environ.get(VISIBLE_ENV)
    if visible is not None:
        ids: list[str] = []
        for part in (p.strip() for p in visible.split(",")):
            if not part or part.startswith("-"):  # CUDA stops at the first invalid entry
                break
            ids.append(part)
    else:
        ids = [str(i) for i in range(listed_gpus() if gpu_count is None else gpu_count)]
    if setting.kind == "auto":
        return ids
    if not ids:
        raise DeviceError(f"device {text!r} asked for, but there is no GPU here",
                          expected=f"a GPU listed by nvidia-smi -L (and in ${VISIBLE_ENV} "
                                   "when set), or --device cpu/auto")
    if not setting.pinned:
        return ids
    if setting.index >= len(ids):
        raise DeviceError(f"device {text!r} asked for, but there are {len(ids)} GPUs here",
                          expected=f"cuda:0 to cuda:{len(ids) - 1}")
    return [ids[setting.index]]


@dataclass(frozen=True)
class Placement:
    """Where the extraction tasks run: an existing scheduler (``address``) or a local
    cluster (one worker per GPU in ``gpus``, else CPU workers); ``gpu_tasks``: each
    task asks for one ``GPU`` resource; ``device``: the device setting each task is
    given (a local GPU worker sees its GPU alone, as ``cuda``)."""

    address: str | None
    gpus: tuple[str, ...] = ()
    gpu_tasks: bool = False
    device: DeviceSetting = AUTO


def placement(address: str | None, setting: DeviceSetting, gpu_count: int | None = None
              ) -> Placement:
    """Local GPUs get a worker each (see :func:`local_gpus`) and tasks that ask for
    one; on an existing scheduler tasks ask for a GPU when the device setting is
    ``cuda`` or ``cuda:N`` (its workers must offer ``--resources GPU=1``)."""
    address = scheduler_address(address)
    if address:
        return Placement(address, gpu_tasks=setting.kind == "cuda", device=setting)
    gpus = tuple(local_gpus(setting, gpu_count))
    if gpus:
        return Placement(None, gpus, True, AUTO if setting.kind == "auto" else CUDA)
    return Placement(None, device=setting)


def task_threads(where: Placement, workers: int | None) -> int:
    """Threads each task's models use: ``$BAHFS_THREADS`` when set (read here, where
    the run starts), else on a local cluster each worker's share of the cores
    (measured: benchmarks/RESULTS.md), else 0 (the runtimes decide)."""
    if threads := threads_per_process():
        return threads
    if where.address:
        return 0
    return max(1, (os.cpu_count() or 1) // (len(where.gpus) or local_workers(workers)))


def gpu_annotation(gpu_tasks: bool) -> AbstractContextManager[Any]:
    """Around ``task.submit`` calls: each task needs one GPU worker (Dask resources)."""
    return annotate(resources={GPU_RESOURCE: 1}) if gpu_tasks else nullcontext()


#: the local CPU cluster talks TLS with a certificate made for it in memory: other
#: users of the machine, who can reach 127.0.0.1, cannot connect and run code in it
#: (about 2 s more to start, measured on 2 busy cores; tasks run as fast)
LOCAL_TLS = {"security": True}


def dask_runner(address: str | None, workers: int | None,
                gpus: Sequence[str] = (), security: Security | None = None,
                videos: int = 1) -> TaskRunner[Any]:
    """Tasks on an existing scheduler (``address`` or ``$BAHFS_DASK_ADDRESS``; a
    ``tls://`` one with the certificates of ``security``, see :mod:`flows.security`),
    else on a LocalCluster of ``workers`` processes (each loads the models once and
    extracts ``videos`` at a time in as many threads, one by default, with its share
    of the cores), or, given ``gpus``, one worker per GPU (:func:`gpu_cluster`). The
    CPU cluster is reachable only with its own temporary certificate
    (``LOCAL_TLS``)."""
    address = scheduler_address(address)
    if address:
        return cast(TaskRunner[Any], DaskTaskRunner(
            address=address, client_kwargs={"security": security} if security else None))
    n = len(gpus) or local_workers(workers)
    env: dict[str, str] = {}
    if url := _api_url():
        env["PREFECT_API_URL"] = url
    if gpus:
        if workers and workers != len(gpus):
            log.info("dask_workers=%d ignored: one worker per GPU (%d)", workers, len(gpus))
        return cast(TaskRunner[Any], DaskTaskRunner(
            cluster_class="distributed.SpecCluster",
            cluster_kwargs=gpu_cluster(gpus, env, videos)))
    return cast(TaskRunner[Any], DaskTaskRunner(cluster_kwargs={
        "n_workers": n, "threads_per_worker": videos, "processes": True,
        "dashboard_address": None, "env": env, **LOCAL_TLS}))


def gpu_cluster(gpus: Sequence[str], env: dict[str, str], videos: int = 1
                ) -> dict[str, Any]:
    """``SpecCluster`` arguments: one worker process per GPU with ``videos`` threads,
    offering the resource ``GPU=videos`` (each task asks for 1: ``videos`` in flight)
    and seeing only its GPU (``CUDA_VISIBLE_DEVICES``); the tasks are told the device
    (:attr:`Placement.device`)."""
    from distributed import Nanny, Scheduler
    from distributed.worker_memory import parse_memory_limit

    net = {"host": "127.0.0.1", "protocol": "tcp://", "dashboard": False,
           "dashboard_address": None}
    common = {**net, "nthreads": videos, "resources": {GPU_RESOURCE: videos},
              "silence_logs": logging.WARN,
              "memory_limit": parse_memory_limit("auto", 1, len(gpus), logger=log)}
    workers = {f"gpu-{i}": {"cls": Nanny, "options": {
        **common, "env": {**env, VISIBLE_ENV: gpu}}}
        for i, gpu in enumerate(gpus)}
    return {"workers": workers, "silence_logs": logging.WARN,
            "scheduler": {"cls": Scheduler, "options": {**net, "port": 0}}}


def require_gpu_workers(wait_s: float = 60.0) -> int | None:
    """How many workers of the running flow's Dask cluster offer ``GPU`` (waits up
    to ``wait_s`` for one; None when the flow's task runner is not Dask): GPU tasks
    on a cluster without any would wait forever, so none is an error."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    runner = ctx.task_runner if ctx is not None else None
    if not isinstance(runner, DaskTaskRunner):
        return None
    client = runner.client
    deadline = time.monotonic() + wait_s
    while True:
        workers = client.scheduler_info(n_workers=-1).get("workers", {})
        n = sum(1 for w in workers.values() if w.get("resources", {}).get(GPU_RESOURCE))
        if n or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    if not n:
        raise ConfigError(f"the device setting asks for CUDA, but none of the {len(workers)} "
                          f"Dask workers offers the {GPU_RESOURCE} resource",
                          expected=f"GPU workers started with --resources {GPU_RESOURCE}=1, "
                                   "or --device cpu/auto")
    return n


def _api_url() -> str | None:
    """The API the flow talks to, so that local Dask workers report to the same one
    (without it, each worker would start a temporary server of its own)."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if url:
        return str(url)
    try:  # the flow runs on Prefect's temporary server (no PREFECT_API_URL set)
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer._instances.get(None)
        return server.api_url if server is not None and server.running else None
    except Exception:  # private API: when it moves, workers fall back to their own
        return None


class Progress:
    """Per-video progress: a Prefect progress artifact, and a rich bar when ``show``."""

    def __init__(self, total: int, *, show: bool) -> None:
        self.total, self.done, self.show = total, 0, show
        self._bar: Any = None
        self._task: Any = None
        self._artifact: UUID | None = None

    def __enter__(self) -> Progress:
        try:
            self._artifact = cast(UUID, create_progress_artifact(
                0.0, key="extract-progress", description="videos extracted"))
        except Exception as exc:  # the UI artifact is a nicety, never a failure
            log.debug("no progress artifact: %s", exc)
        if self.show:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar("[progress.description]{task.description}", BarColumn(),
                            MofNCompleteColumn(), TimeRemainingColumn(),
                            console=Console(file=sys.stderr))
            self._bar.start()
            self._task = self._bar.add_task("extract", total=self.total)
        return self

    def advance(self, video_id: str, status: str) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=1, description=f"{video_id} {status}")
        if self._artifact is not None:
            try:
                update_progress_artifact(self._artifact, 100.0 * self.done / max(1, self.total))
            except Exception as exc:
                log.debug("progress artifact not updated: %s", exc)

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()


def summary_markdown(report: ExtractReport) -> str:
    """The run summary as a Markdown artifact (shown in the Prefect UI)."""
    lines = [
        "# bahfs extract", "",
        "| | videos |", "|---|---|",
        f"| extracted | {len(report.extracted)} ({report.frames} frames) |",
        f"| skipped (already stored) | {len(report.skipped)} |",
        f"| busy (another run has it) | {len(report.busy)} |",
        f"| quarantined | {len(report.quarantined)} |",
        f"| failed after retries (the machine's fault: still pending) | "
        f"{len(report.failed)} |",
        f"| bugs (tracebacks in the store's `bugs` table) | {len(report.bugs)} |", "",
        f"Batches ingested: {report.batches}. Feature sets: "
        + ", ".join(f"`{f}`" for f in report.feature_sets), "",
    ]
    if report.halted:
        lines += [f"**Run stopped early**: {report.halted} ({report.pending} videos remain "
                  "pending)", ""]
    problems = {**report.quarantined, **report.failed, **report.bugs}
    if problems:
        lines += ["| video | problem |", "|---|---|"]
        lines += [f"| {v} | {r} |" for v, r in problems.items()]
    if report.bad_batches:
        lines += ["", "| batch not ingested | problem |", "|---|---|"]
        lines += [f"| {b} | {r} |" for b, r in report.bad_batches.items()]
    if report.model_loads:
        lines += ["", "Models loaded per worker process: "
                  + ", ".join(f"{w}: {n}" for w, n in sorted(report.model_loads.items()))]
    return "\n".join(lines)
