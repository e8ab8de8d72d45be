"""What the flows share: the Dask task runner, progress (a Prefect progress
artifact in the UI, and a bar on stderr for the CLI), the consent policy and the
run summary."""

from __future__ import annotations

import logging
import os
import sys
from types import TracebackType
from typing import Any, cast
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.task_runners import TaskRunner
from prefect_dask.task_runners import DaskTaskRunner

from extractors.runtime import THREADS_ENV
from flows.job import ExtractReport
from store.consent import ConsentPolicy
from store.errors import ConfigError

log = logging.getLogger("bahfs.flows")

#: An existing Dask scheduler to use instead of starting a LocalCluster.
DASK_ADDRESS_ENV = "BAHFS_DASK_ADDRESS"
#: Where the flows look when a run names no source or store (set them in the
#: worker's environment; relative paths are taken from the project directory).
INBOX_ENV, STORE_ENV = "BAHFS_INBOX", "BAHFS_STORE"


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


def dask_runner(address: str | None, workers: int | None) -> TaskRunner[Any]:
    """Tasks on an existing scheduler (``address`` or ``$BAHFS_DASK_ADDRESS``), else
    on a LocalCluster of ``workers`` single-threaded processes (each process loads
    the models once and extracts one video at a time, with its share of the cores)."""
    address = address or os.environ.get(DASK_ADDRESS_ENV) or None
    if address:
        if "://" not in address:
            raise ConfigError(f"dask address {address!r} has no scheme",
                              expected="tcp://host:8786")
        return cast(TaskRunner[Any], DaskTaskRunner(address=address))
    n = local_workers(workers)
    env = {THREADS_ENV: str(max(1, (os.cpu_count() or 1) // n))}
    if url := _api_url():
        env["PREFECT_API_URL"] = url
    return cast(TaskRunner[Any], DaskTaskRunner(cluster_kwargs={
        "n_workers": n, "threads_per_worker": 1, "processes": True,
        "dashboard_address": None, "env": env}))


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
        f"| failed after retries | {len(report.failed)} |", "",
        f"Batches ingested: {report.batches}. Feature sets: "
        + ", ".join(f"`{f}`" for f in report.feature_sets), "",
    ]
    if report.quarantined or report.failed:
        lines += ["| video | problem |", "|---|---|"]
        lines += [f"| {v} | {r} |" for v, r in {**report.quarantined, **report.failed}.items()]
    if report.bad_batches:
        lines += ["", "| batch not ingested | problem |", "|---|---|"]
        lines += [f"| {b} | {r} |" for b, r in report.bad_batches.items()]
    if report.model_loads:
        lines += ["", "Models loaded per worker process: "
                  + ", ".join(f"{w}: {n}" for w, n in sorted(report.model_loads.items()))]
    return "\n".join(lines)
