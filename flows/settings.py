"""A run's settings, parsed once where the run starts (``bahfs extract``, or the
``extract`` flow's parameters in a deployment) and passed down as one typed value:
the plan, the device setting, where the tasks run (:func:`flows.placement.placement`),
the Dask TLS files (:func:`flows.security.tls_files`), the threads each task's models
use and the videos in flight per worker. Nothing below parses them again: the host
gets :meth:`RunSettings.host_runtime` (feature-set ids), each task
:meth:`RunSettings.task_runtime`, the task runner :meth:`RunSettings.security`. The
run's store is opened once there too (:func:`open_run_store`: a folder or a bucket)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from distributed import Security

from extractors import DEFAULT_EXTRACTORS
from extractors.plan import Plan, choose_plan
from extractors.runtime import Runtime
from flows.placement import Placement, batch_rows, placement, task_threads, videos_per_worker
from flows.security import TlsFiles, tls_files
from store.access import make_store_dir
from store.backend import Store
from store.consent import ConsentPolicy
from store.devices import DeviceSetting, parse_device
from store.local import LocalStore, bucket_to_write
from store.s3_objects import is_s3


@dataclass(frozen=True)
class RunSettings:
    """What a run was asked for, checked: ``device`` as asked (the host's setting),
    ``where`` the tasks run and the device each is told, ``tls`` (None: no TLS),
    ``threads`` per task's models (0: the runtimes decide), ``videos`` in flight per
    worker, ``workers``: local Dask worker processes asked for (None: the default)."""

    plan: Plan
    device: DeviceSetting
    where: Placement
    tls: TlsFiles | None = None
    threads: int = 0
    videos: int = 1
    workers: int | None = None

    def host_runtime(self) -> Runtime:
        """The runtime of the host that plans the run."""
        return Runtime(self.device, self.threads)

    def task_runtime(self) -> Runtime:
        """The runtime every extraction task is given: its device, threads and rows
        per model call gathered across the worker's videos in flight."""
        return Runtime(self.where.device, self.threads, batch_rows(self.videos))

    def security(self) -> Security | None:
        """Dask's ``Security`` for a ``tls://`` scheduler, else None."""
        return self.tls.security() if self.tls is not None else None


def run_settings(*, extractors: Sequence[str] | None = None, plan: str | Path | None = None,
                 device: str | None = None, dask_address: str | None = None,
                 dask_workers: int | None = None,
                 tls: tuple[str | None, str | None, str | None] = (None, None, None),
                 videos_per_worker_asked: int | None = None) -> RunSettings:
    """Every setting of a run, each parsed here once; a bad one is a clear error
    (:class:`~store.errors.ConfigError`, ``NotFoundError``, ``DeviceError`` for CUDA
    asked for where there is none) before any work. ``device`` None:
    ``$BAHFS_DEVICE``, else auto; ``dask_address`` None: ``$BAHFS_DASK_ADDRESS``,
    else a local cluster; ``tls``: the CA, certificate and key files."""
    setting = parse_device(device)
    where = placement(dask_address, setting)
    files = tls_files(where.address, *tls)
    return RunSettings(
        plan=choose_plan(extractors, plan, DEFAULT_EXTRACTORS), device=setting, where=where,
        tls=files, threads=task_threads(where, dask_workers),
        videos=videos_per_worker(videos_per_worker_asked, bool(where.gpus or where.gpu_tasks)),
        workers=dask_workers)


#: Where the flows look when a run names no source or store (set them in the
#: worker's environment; relative paths are taken from the project directory).
INBOX_ENV, STORE_ENV = "BAHFS_INBOX", "BAHFS_STORE"


def source_and_store(source: str | None, store: str | None) -> tuple[str, str]:
    """The run's parameters, else ``$BAHFS_INBOX``/``$BAHFS_STORE``, else
    ``data/inbox`` and ``data/store``."""
    return (source or os.environ.get(INBOX_ENV) or "data/inbox",
            store or os.environ.get(STORE_ENV) or "data/store")


def open_run_store(store: str) -> Store:
    """The store a run writes, opened once where the run starts: ``s3://bucket/prefix``
    holding a store or nothing (the AWS settings of this process), else a folder,
    made with the store's access policy when missing."""
    if is_s3(store):
        return bucket_to_write(store)
    make_store_dir(store)
    return LocalStore(Path(store))


def consent_policy(consent: list[str] | None) -> ConsentPolicy:
    """The consents asked for, else the policy's default (challenges and publications)."""
    return ConsentPolicy(require=tuple(consent)) if consent else ConsentPolicy()
