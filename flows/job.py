"""Extract the store's pending videos, one video per job: the per-video engine (the
body of the Prefect ``extract`` flow's per-video task, ``flows/extract.py``, and of
the threads of :func:`flows.engine.extract_release`), and the run's report and record.

* :func:`pending_jobs` lists consented (ingested) videos not yet in every chosen
  feature set and not quarantined.
* :func:`run_video` claims the video (the store's ``video_lock``: a second run that
  meets it moves on, so no video is processed twice), decodes it once, runs every
  extractor, checks the frame count, re-checks consent and publishes atomically.
  Everything it raises, from loading the models to the publish, goes through one
  classification (:func:`store.failures.classify`): the input's fault comes back
  ``quarantined`` with the reason; a bug comes back ``bug`` with its traceback
  (saved in the ``bugs`` table, never a quarantine); a machine fault that will hit
  every video comes back ``halted`` (the video stays pending, the caller stops the
  run); a transient machine fault is raised as :class:`~store.errors.MachineError`
  (:class:`~store.errors.DeviceError` for out of device memory) for the caller to
  retry (the video stays pending).
* :func:`escaped` is the outcome of an exception that escaped a video's job (a
  transient fault its retries did not cure, a lost worker, a bug in the code
  around :func:`run_video`), by the same classification.
* The store is a :class:`~store.backend.Store` (a folder, or a bucket), opened once
  where a job arrives (:func:`run_video`; a worker unpickles it with its own
  credentials) and passed down; a path or ``s3://`` address is opened there.
* :func:`record_run` appends the quarantine and bug rows and an ``extract_runs``
  row and refreshes the catalog, under the store lock.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import traceback
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import polars as pl

from extractors.base import Extractor
from extractors.context import CONTEXTS, WorkerContext, build_extractors
from extractors.pipeline import extract_all
from extractors.plan import Plan, as_plan
from extractors.runtime import DEFAULT_RUNTIME, Runtime, check_loaded_models, device_fault_kind
from store.backend import Store, VideoRef
from store.catalog import refresh_catalog
from store.consent import subject_hash, withdrawn
from store.errors import ConsentError, DeviceError, MachineError, VideoDecodeError
from store.failures import Fault, Where, WorkerLostRecogniser, classify
from store.fault_points import fault_point
from store.ingest import quarantine_rows
from store.local import as_store
from store.purge import scrub_videos, unpublish_video
from store.s3_objects import is_s3
from store.schema import empty
from store.tables import utc_now
from store.writer import FeatureWriter

Status = Literal["extracted", "skipped", "busy", "quarantined", "failed", "bug", "halted"]
log = logging.getLogger("bahfs.flows")


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
    model_loads: int = 0  # worker contexts that worker process has built so far
    kind: str = ""  # the fault's kind (store.failures) when it was not extracted
    traceback: str = ""  # a bug's traceback


@dataclass
class ExtractReport:
    run_id: str = ""
    feature_sets: list[str] = field(default_factory=list)
    extracted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # machine faults, still pending
    bugs: dict[str, str] = field(default_factory=dict)  # video -> error (traceback saved)
    halted: str = ""  # why the run stopped early (a fault that would hit every video)
    pending: int = 0  # videos left pending when the run stopped early
    frames: int = 0
    batches: int = 0
    bad_batches: dict[str, str] = field(default_factory=dict)  # batch -> why it was skipped
    model_loads: dict[str, int] = field(default_factory=dict)  # worker -> contexts built
    quarantine_kinds: dict[str, str] = field(default_factory=dict)  # video -> input kind
    tracebacks: dict[str, str] = field(default_factory=dict)  # video -> bug traceback
    #: the one message of a run stopped early (what to fix, how many videos remain,
    #: and why its record could not be written when that failed too); "" otherwise
    stopped: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def feature_set_ids(plan: Plan | tuple[str, ...], runtime: Runtime = DEFAULT_RUNTIME
                    ) -> list[str]:
    """The ids of the plan's feature sets (extractor names: their default options),
    from its extractors built on ``runtime`` but not loaded: the config's identity
    fields, the model files' SHA-256 and the declared arrays; no inference session is
    created and no model loaded (the ids do not depend on ``runtime``)."""
    return [e.spec().id for e in build_extractors(as_plan(plan), runtime)]


def _done(store: Store | Path, fs_ids: list[str], job: VideoJob) -> bool:
    st = as_store(store)
    return all(st.is_published(VideoRef(fs, job.participant_id, job.video_id))
               for fs in fs_ids)


def pending_jobs(store: Store | Path, fs_ids: list[str]) -> tuple[list[VideoJob], list[str]]:
    """Videos still to extract, and those already in every feature set."""
    st = as_store(store)
    videos = st.read_table("videos")
    bad = set(st.read_table_or_empty("quarantine")["video_id"].to_list())
    todo: list[VideoJob] = []
    done: list[VideoJob] = []
    for vid, pid, src, rel, n in videos.select("video_id", "participant_id", "source", "path",
                                               "n_frames").iter_rows():
        if vid in bad:
            continue
        job = VideoJob(vid, pid, src, rel, int(n))
        (done if _done(st, fs_ids, job) else todo).append(job)
    return todo, [j.video_id for j in done]


def extract_one(store: Store, writer: FeatureWriter, extractors: tuple[Extractor, ...],
                job: VideoJob) -> int:
    """Decode once (the file the store's ``source_file`` gives: the release's own for
    a folder store, a copy fetched from the bucket for a bucket), run every
    extractor, check the frame count against the videos table and consent, then
    publish each feature set; return the frames. Consent is checked again once
    published: a withdrawal recorded meanwhile (the purge records it before it
    removes features) takes back what was just published."""
    with store.source_file(job.participant_id, job.video_id, job.file) as file:
        feats = extract_all(file, list(extractors), video_id=job.video_id,
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


def store_address(store: Store) -> Path | str:
    """Where ``store`` is, as the classification names it: its folder, or its
    ``s3://`` address."""
    return store.location if is_s3(store.location) else Path(store.location)


def where_of(store: Store, job: VideoJob) -> Where:
    """What the classification needs to know about ``job``."""
    return Where(store=store_address(store), file=job.file, source=Path(job.source),
                 participant=job.participant_id, video=job.video_id)


def classify_video(exc: BaseException, store: Store, job: VideoJob,
                   lost: WorkerLostRecogniser | None = None) -> Fault:
    """Whose fault ``exc``, raised while ``job`` was processed, is (device faults
    recognised by :func:`extractors.runtime.device_fault_kind`, a lost worker by
    ``lost``). A participant who withdrew meanwhile comes first: a purge racing the
    extraction (it removes the folder the video was being published into) is the
    withdrawal, not a fault."""
    try:
        gone = subject_hash(job.participant_id) in withdrawn(store)
    except Exception:  # the store unreadable: the classification says why
        gone = False
    if gone and not isinstance(exc, ConsentError):
        exc = ConsentError("participant withdrew while the video was extracted; not "
                           f"stored ({type(exc).__name__}: {exc})",
                           participant=job.participant_id, video=job.video_id)
    return classify(exc, where_of(store, job), device_fault_kind, lost)


def fault_outcome(fault: Fault, exc: BaseException, job: VideoJob,
                  measured: VideoOutcome | None = None) -> VideoOutcome:
    """The outcome ``fault`` (the verdict on ``exc``) calls for: the input's fault
    ``quarantined``, a bug ``bug`` with its traceback, a fault that will hit every
    video ``halted``, a transient machine fault ``failed`` (the video stays
    pending); timing and worker from ``measured`` when given."""
    status: Status = "halted" if fault.stop else "failed"
    reason, tb = fault.summary, ""
    if fault.owner == "input":
        status, reason = "quarantined", fault.message
    elif fault.owner == "bug":
        log.error("bug while extracting %s: %s", job.video_id, fault.message)
        status, reason = "bug", fault.message
        tb = "".join(traceback.format_exception(exc))
    elif not fault.stop and isinstance(exc, MachineError):  # run_video's: classified
        reason = exc.message  # where it was raised, its message says what to fix
    base = measured or VideoOutcome(job.video_id, job.participant_id, status)
    return replace(base, status=status, reason=reason, kind=fault.kind, traceback=tb)


def escaped(exc: BaseException, store: Store | str | Path, job: VideoJob,
            lost: WorkerLostRecogniser | None = None) -> VideoOutcome:
    """The outcome of ``job`` whose run raised ``exc`` (after any retries): a
    transient fault that stayed, a lost worker (``lost``), a bug in the code around
    :func:`run_video`; classified as everything else is."""
    return fault_outcome(classify_video(exc, as_store(store), job, lost), exc, job)


def run_video(store: Store | str | Path, job: VideoJob, plan: Plan | tuple[str, ...],
              runtime: Runtime = DEFAULT_RUNTIME) -> VideoOutcome:
    """Extract one video into ``store`` unless done, claimed elsewhere or broken, the
    models on ``runtime`` (device setting, threads), in this process's worker context
    of (plan, runtime) (:data:`extractors.context.CONTEXTS`: made at its first video).
    Every exception (but interrupts) is classified here, the one place: see the
    module docstring. A transient machine fault raises :class:`MachineError` (the
    video lock released, nothing published) for the caller to retry."""
    st = as_store(store)
    t0 = time.perf_counter()
    who = f"{socket.gethostname()}:{os.getpid()}"

    def outcome(status: Status, frames: int = 0, reason: str = "") -> VideoOutcome:
        return VideoOutcome(job.video_id, job.participant_id, status, frames, reason,
                            round(time.perf_counter() - t0, 3), who, CONTEXTS.built)

    try:
        fault_point("video")  # crash and fault tests (store.fault_points): off unless asked for
        with CONTEXTS.use(as_plan(plan), runtime) as context:
            return outcome(*_in_context(st, job, context))
    except Exception as exc:
        fault = classify_video(exc, st, job)
        if fault.owner == "machine" and not fault.stop:  # transient: the caller retries
            kind = DeviceError if fault.kind.startswith("device") else MachineError
            raise kind(fault.summary, path=job.file, participant=job.participant_id,
                       video=job.video_id, expected=fault.fix) from exc
        return fault_outcome(fault, exc, job, outcome("failed"))


def _in_context(store: Store, job: VideoJob, context: WorkerContext
                ) -> tuple[Status, int, str]:
    """(status, frames, reason) of ``job`` run with ``context``'s extractors."""
    check_loaded_models(context.stamps)  # a model file gone or changed under a running run
    with store.video_lock(job.video_id) as mine, context.video():
        if not mine:
            return "busy", 0, "another run is extracting it"
        if _done(store, context.ids, job):
            return "skipped", 0, ""
        frames = extract_one(store, FeatureWriter(store), context.extractors, job)
        return "extracted", frames, ""


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
            report.quarantine_kinds[o.video_id] = o.kind
        elif o.status == "bug":
            report.bugs[o.video_id] = o.reason
            report.tracebacks[o.video_id] = o.traceback
        elif o.status == "halted":
            report.halted = report.halted or o.reason
        else:
            report.failed[o.video_id] = o.reason
        if o.worker:
            report.model_loads[o.worker] = max(report.model_loads.get(o.worker, 0),
                                               o.model_loads)
    return report


def record_run(store: Store | Path, report: ExtractReport, started_at: str) -> None:
    """Quarantine rows for the input faults, bug rows (with their tracebacks), an
    ``extract_runs`` row, a fresh catalog."""
    st = as_store(store)
    with st.lock():
        if report.quarantined:
            q = st.read_table_or_empty("quarantine")
            new = quarantine_rows(st.read_table("videos"), report.quarantined, "extract",
                                  report.quarantine_kinds)
            st.write_table("quarantine", pl.concat([q, new]).unique(
                ["video_id", "stage"], keep="last", maintain_order=True))
        if report.bugs:
            owners = dict(st.read_table("videos").select(
                "video_id", "participant_id").iter_rows())
            now = utc_now()
            rows = pl.DataFrame([{"video_id": v, "participant_id": owners.get(v, ""),
                                  "run_id": report.run_id, "at": now, "error": why,
                                  "traceback": report.tracebacks.get(v, "")}
                                 for v, why in report.bugs.items()],
                                schema=empty("bugs").schema)
            st.write_table("bugs", pl.concat([st.read_table_or_empty("bugs"), rows]))
        gone = withdrawn(st)  # a participant withdrawn during the run: not in its log

        def keep(video_id: str) -> bool:
            pid, sep, _ = video_id.partition("__")
            return not sep or subject_hash(pid) not in gone

        detail = scrub_videos({"quarantined": report.quarantined, "failed": report.failed,
                               "bugs": report.bugs, "halted": report.halted,
                               "pending": report.pending,
                               "busy": report.busy, "model_loads_per_worker": report.model_loads,
                               "bad_batches": report.bad_batches}, keep)
        row = pl.DataFrame([{
            "run_id": report.run_id, "started_at": started_at, "finished_at": utc_now(),
            "feature_sets": json.dumps(report.feature_sets), "batches": report.batches,
            "extracted": len(report.extracted), "skipped": len(report.skipped),
            "busy": len(report.busy), "quarantined": len(report.quarantined),
            "frames": report.frames, "detail": json.dumps(detail, sort_keys=True)}],
            schema=empty("extract_runs").schema)
        st.write_table("extract_runs",
                       pl.concat([st.read_table_or_empty("extract_runs"), row]))
        refresh_catalog(st)


def record_run_or_say_why(store: Store, report: ExtractReport, started_at: str) -> str:
    """:func:`record_run` for a run that may have stopped early: "" once recorded;
    when the machine fault that stopped the run also stops the record (a full disk,
    a read-only store), why it could not be written. Anything else is raised."""
    try:
        record_run(store, report, started_at)
    except Exception as exc:
        fault = classify(exc, Where(store=store_address(store)))
        if not report.halted or fault.owner != "machine":
            raise
        log.warning("the run's record could not be written: %s", fault.message)
        return f"the run's record could not be written ({fault.message})"
    return ""


def halt_message(report: ExtractReport, todo: int) -> str:
    """The one message of a run stopped early: what to fix, how many videos remain."""
    done = len(report.extracted) + len(report.quarantined)
    report.pending = todo - done
    return (f"run stopped: {report.halted}. {report.pending} of {todo} videos remain "
            f"pending ({len(report.extracted)} extracted, {len(report.quarantined)} "
            "quarantined in this run); run extract again once fixed")
