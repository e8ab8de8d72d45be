"""The Dask task runner of the flows: tasks on an existing scheduler, a local CPU
cluster reachable only with its own certificate, or a local cluster of one worker per
GPU; and the check that a cluster offers GPU workers."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, cast

from distributed import Security
from prefect.task_runners import TaskRunner
from prefect_dask.task_runners import DaskTaskRunner

from flows.placement import GPU_RESOURCE, VISIBLE_ENV, local_workers, scheduler_address
from store.errors import ConfigError

log = logging.getLogger("bahfs.flows")

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
