"""What a run shows while it goes and when it ends: per-video progress (a Prefect
progress artifact in the UI, a bar on stderr for the CLI) and the run's summary in
Markdown."""

from __future__ import annotations

import logging
import sys
from types import TracebackType
from typing import Any, cast
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact

from flows.job import ExtractReport

log = logging.getLogger("bahfs.flows")

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
