"""Where a run's tasks go: an existing Dask scheduler or a local cluster of how many
workers, one worker per GPU when the device setting asks for CUDA, the videos each
worker has in flight and the threads each task gets."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from dask.base import annotate

from extractors.runtime import threads_per_process
from store.devices import DeviceSetting
from store.errors import ConfigError, DeviceError

log = logging.getLogger("bahfs.flows")

#: the device settings a local GPU cluster's tasks are given (each sees its GPU alone)
AUTO, CUDA = DeviceSetting("auto"), DeviceSetting("cuda")
#: An existing Dask scheduler to use instead of starting a LocalCluster.
DASK_ADDRESS_ENV = "BAHFS_DASK_ADDRESS"
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
