"""Extract the store's pending videos, one video per job: the body of the Prefect
``extract`` flow's per-video task (``flows/extract.py``), also usable without Prefect
(:func:`extract_release`).

* :func:`pending_jobs` lists consented (ingested) videos not yet in every chosen
  feature set and not quarantined.
* :func:`run_video` claims the video (``store.locks.video_lock``: a second run that
  meets it moves on, so no video is processed twice), decodes it once, runs every
  extractor, checks the frame count, re-checks consent and publishes atomically.
  A video that fails its checks comes back ``quarantined`` with the reason; other
  exceptions (transient faults) propagate, for the caller to retry, and so does a
  :class:`~store.errors.DeviceError` (out of GPU memory, a lost device: never the
  video's fault), even when an extractor wrapped it.
* :func:`record_run` appends the quarantine rows and an ``extract_runs`` row and
  refreshes the catalog, under the store lock.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from extractors.base import Extractor
from extractors.migrate import migrate_feature_set_ids
from extractors.pipeline import extract_all, shared_extractors
from extractors.plan import Plan, as_plan
from extractors.runtime import DEFAULT_RUNTIME, Runtime
from store.catalog import refresh_catalog
from store.consent import subject_hash, withdrawn
from store.errors import BahfsError, ConsentError, DeviceError, VideoDecodeError
from store.ingest import quarantine_rows
from store.layout import is_published
from store.locks import store_lock, video_lock
from store.purge import scrub_videos, unpublish_video
from store.schema import empty
from store.tables import read_table, read_table_or_empty, utc_now, write_table
from store.writer import FeatureWriter

Status = Literal["extracted", "skipped", "busy", "quarantined", "failed"]


@dataclass(frozen=True)
class VideoJob:
    """One video to extract (plain values, so it travels to any Dask worker)."""

    video_id: str
    participant_id: str
    source: str  # release (or batch) folder
    path: str  # the video file, relative to source
    n_frames: int

    @property
    def file(self) -> Path:
        return Path(self.source) / self.path


@dataclass(frozen=True)
class VideoOutcome:
    video_id: str
    participant_id: str
    status: Status
    frames: int = 0
    reason: str = ""
    seconds: float = 0.0
    worker: str = ""  # host:pid that ran it
    model_loads: int = 0  # times that worker process has loaded the models so far


@dataclass
class ExtractReport:
    run_id: str = ""
    feature_sets: list[str] = field(default_factory=list)
    extracted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    batches: int = 0
    bad_batches: dict[str, str] = field(default_factory=dict)  # batch -> why it was skipped
    model_loads: dict[str, int] = field(default_factory=dict)  # worker -> loads

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def feature_set_ids(plan: Plan | tuple[str, ...], runtime: Runtime = DEFAULT_RUNTIME
                    ) -> list[str]:
    """The ids of the plan's feature sets (extractor names: their default options),
    its extractors built on ``runtime`` (the ids do not depend on it)."""
    return [e.spec().id for e in shared_extractors(as_plan(plan), runtime)]


def _done(store: Path, fs_ids: list[str], job: VideoJob) -> bool:
    return all(is_published(store, fs, job.participant_id, job.video_id) for fs in fs_ids)


def pending_jobs(store: Path, fs_ids: list[str]) -> tuple[list[VideoJob], list[str]]:
    """Videos still to extract, and those already in every feature set."""
    store = Path(store)
    videos = read_table(store, "videos")
    bad = set(read_table_or_empty(store, "quarantine")["video_id"].to_list())
    todo: list[VideoJob] = []
    done: list[VideoJob] = []
    for vid, pid, src, rel, n in videos.select("video_id", "participant_id", "source", "path",
                                               "n_frames").iter_rows():
        if vid in bad:
            continue
        job = VideoJob(vid, pid, src, rel, int(n))
        (done if _done(store, fs_ids, job) else todo).append(job)
    return todo, [j.video_id for j in done]


def extract_one(store: Path, writer: FeatureWriter, extractors: tuple[Extractor, ...],
                job: VideoJob) -> int:
    """Decode once, run every extractor, check the frame count against the videos
    table and consent, then publish each feature set; return the frames. Consent is
    checked again once published: a withdrawal recorded meanwhile (the purge records
    it before it removes features) takes back what was just published."""
    feats = extract_all(job.file, list(extractors), video_id=job.video_id,
                        participant_id=job.participant_id)
    if feats[0].n_frames != job.n_frames:
        raise VideoDecodeError(f"decoded {feats[0].n_frames} frames, the videos table says "
                               f"{job.n_frames}", path=job.file,
                               participant=job.participant_id, video=job.video_id,
                               expected=f"{job.n_frames} frames")
    if subject_hash(job.participant_id) in withdrawn(store):
        raise ConsentError("participant withdrew while the video was extracted; not stored",
                           participant=job.participant_id, video=job.video_id)
    for f in feats:
        writer.write(f)
    if subject_hash(job.participant_id) in withdrawn(store):
        unpublish_video(store, job.participant_id, job.video_id, [f.spec.id for f in feats])
        raise ConsentError("participant withdrew while the video was published; removed",
                           participant=job.participant_id, video=job.video_id)
    return feats[0].n_frames


def device_error_in(exc: BaseException) -> DeviceError | None:
    """The :class:`DeviceError` behind ``exc``: itself, or the cause an extractor
    wrapped in its own error (``raise ... from``), else None."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if isinstance(cur, DeviceError):
            return cur
        seen.add(id(cur))
        cur = cur.__cause__
    return None


def run_video(store: str | Path, job: VideoJob, plan: Plan | tuple[str, ...],
              runtime: Runtime = DEFAULT_RUNTIME) -> VideoOutcome:
    """Extract one video into ``store`` unless done, claimed elsewhere or broken, the
    models on ``runtime`` (device setting, threads). A device fault propagates (the
    video lock released, nothing published) for the caller to retry; the video is
    never quarantined for it."""
    store = Path(store)
    t0 = time.perf_counter()
    plan = as_plan(plan)
    extractors = shared_extractors(plan, runtime)
    who = f"{socket.gethostname()}:{os.getpid()}"
    loads = shared_extractors.cache_info().misses

    def outcome(status: Status, frames: int = 0, reason: str = "") -> VideoOutcome:
        return VideoOutcome(job.video_id, job.participant_id, status, frames, reason,
                            round(time.perf_counter() - t0, 3), who, loads)

    with video_lock(store, job.video_id) as mine:
        if not mine:
            return outcome("busy", reason="another run is extracting it")
        if _done(store, feature_set_ids(plan, runtime), job):
            return outcome("skipped")
        try:
            return outcome("extracted", extract_one(store, FeatureWriter(store), extractors, job))
        except BahfsError as exc:
            fault = device_error_in(exc)
            if fault is exc:
                raise
            if fault is not None:  # an extractor wrapped it: the device's, not the video's
                raise DeviceError(fault.message, path=job.file, participant=job.participant_id,
                                  video=job.video_id, expected=fault.expected) from exc
            return outcome("quarantined", reason=str(exc))


def summarise(outcomes: list[VideoOutcome], report: ExtractReport) -> ExtractReport:
    for o in outcomes:
        if o.status == "extracted":
            report.extracted.append(o.video_id)
            report.frames += o.frames
        elif o.status == "skipped":
            report.skipped.append(o.video_id)
        elif o.status == "busy":
            report.busy.append(o.video_id)
        elif o.status == "quarantined":
            report.quarantined[o.video_id] = o.reason
        else:
            report.failed[o.video_id] = o.reason
        if o.worker:
            report.model_loads[o.worker] = max(report.model_loads.get(o.worker, 0),
                                               o.model_loads)
    return report


def record_run(store: Path, report: ExtractReport, started_at: str) -> None:
    """Quarantine rows for failed videos, an ``extract_runs`` row, a fresh catalog."""
    store = Path(store)
    with store_lock(store):
        if report.quarantined:
            q = read_table_or_empty(store, "quarantine")
            new = quarantine_rows(read_table(store, "videos"), report.quarantined, "extract")
            write_table(store, "quarantine", pl.concat([q, new]).unique(
                ["video_id", "stage"], keep="last", maintain_order=True))
        gone = withdrawn(store)  # a participant withdrawn during the run: not in its log

        def keep(video_id: str) -> bool:
            pid, sep, _ = video_id.partition("__")
            return not sep or subject_hash(pid) not in gone

        detail = scrub_videos({"quarantined": report.quarantined, "failed": report.failed,
                               "busy": report.busy, "model_loads_per_worker": report.model_loads,
                               "bad_batches": report.bad_batches}, keep)
        row = pl.DataFrame([{
            "run_id": report.run_id, "started_at": started_at, "finished_at": utc_now(),
            "feature_sets": json.dumps(report.feature_sets), "batches": report.batches,
            "extracted": len(report.extracted), "skipped": len(report.skipped),
            "busy": len(report.busy), "quarantined": len(report.quarantined),
            "frames": report.frames, "detail": json.dumps(detail, sort_keys=True)}],
            schema=empty("extract_runs").schema)
        write_table(store, "extract_runs",
                    pl.concat([read_table_or_empty(store, "extract_runs"), row]))
        refresh_catalog(store)


def extract_release(store: Path, plan: Plan | tuple[str, ...],
                    progress: Callable[[str], None] | None = None,
                    runtime: Runtime = DEFAULT_RUNTIME) -> ExtractReport:
    """Extract every pending video of ``store`` in this process, one after another
    (``plan``: an extraction plan, or extractor names with their default options;
    ``runtime``: the models' device setting and threads)."""
    started = utc_now()
    plan = as_plan(plan)
    fs_ids = feature_set_ids(plan, runtime)
    migrate_feature_set_ids(store)  # once: ids that included run options
    todo, done = pending_jobs(store, fs_ids)
    report = ExtractReport(run_id=uuid.uuid4().hex, feature_sets=fs_ids, skipped=done)
    outcomes = []
    for i, job in enumerate(todo, 1):
        outcomes.append(run_video(store, job, plan, runtime))
        if progress:
            progress(f"[{i}/{len(todo)}] {job.video_id}: {outcomes[-1].status}")
    summarise(outcomes, report)
    record_run(store, report, started)
    return report
