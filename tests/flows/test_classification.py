"""No exception raised while a video is processed escapes the one classification
point (``flows.job.run_video`` through ``store.failures.classify``): an exception is
injected at every stage of a real extraction (real decoding, the real log-mel
extractor, the real writer) and each comes back as the outcome its owner calls for.
Only the stage's function is replaced; the handling code is the real one."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from extractors.audio import LogMelExtractor
from flows.engine import extract_release
from flows.job import VideoJob, run_video
from store.errors import MachineError, VideoDecodeError
from store.ingest import ingest
from store.layout import is_published
from store.locks import video_lock
from store.tables import read_table, read_table_or_empty

#: stage -> (module or class, attribute) replaced by a function that raises
STAGES: dict[str, tuple[str, str]] = {
    "models": ("flows.job", "check_loaded_models"),
    "claim": ("store.local.LocalStore", "video_lock"),
    "probe": ("extractors.decode", "probe_video"),
    "decode": ("extractors.pipeline", "open_video"),
    "audio decode": ("extractors.pipeline", "decode_audio"),
    "extractor": ("extractors.audio.LogMelExtractor", "compute"),
    "checks": ("flows.job", "withdrawn"),
    "write": ("store.writer.FeatureWriter", "_build"),
    "publish": ("store.local", "fault_point"),
}
FAULTS: dict[str, Callable[[], BaseException]] = {
    "bug": lambda: KeyError("injected"),
    "machine": lambda: OSError(errno.ENOSPC, "No space left on device"),
    "input": lambda: VideoDecodeError("injected: the decoder gave up"),
    "transient": lambda: MemoryError(),
}


@pytest.fixture(scope="module")
def store(sample_release: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("classify") / "store"
    ingest(sample_release, path)
    return path


def _job(store: Path) -> VideoJob:
    vid, pid, src, rel, n = read_table(store, "videos").select(
        "video_id", "participant_id", "source", "path", "n_frames").row(0)
    return VideoJob(vid, pid, src, rel, n)


def _inject(monkeypatch: pytest.MonkeyPatch, stage: str, exc: BaseException) -> None:
    import importlib

    where, attr = STAGES[stage]
    try:
        target: Any = importlib.import_module(where)
    except ModuleNotFoundError:
        mod, _, cls = where.rpartition(".")
        target = getattr(importlib.import_module(mod), cls)

    def boom(*args: object, **kwargs: object) -> None:
        if stage == "publish" and args and args[0] != "rename":
            return None  # the other fault points of the writer pass
        raise exc

    monkeypatch.setattr(target, attr, boom)


@pytest.mark.parametrize("stage", list(STAGES))
@pytest.mark.parametrize("fault", ["bug", "machine"])
def test_an_exception_at_any_stage_is_classified(store: Path, stage: str, fault: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    job = _job(store)
    fs = LogMelExtractor().spec().id
    with monkeypatch.context() as m:
        _inject(m, stage, FAULTS[fault]())
        out = run_video(store, job, ("logmel",))  # nothing escapes
    if fault == "bug":
        assert out.status == "bug" and out.kind == "KeyError"
        assert "injected" in out.traceback and "Traceback" in out.traceback
        assert job.video_id in out.reason  # the error names the video
    else:
        assert out.status == "halted" and out.kind == "disk full"
        assert "free space" in out.reason  # what to fix
    assert not is_published(store, fs, job.participant_id, job.video_id)
    with video_lock(store, job.video_id) as mine:
        assert mine  # released


@pytest.mark.parametrize("stage", ["probe", "extractor", "write"])
def test_input_faults_quarantine_and_transient_ones_are_raised_for_a_retry(
        store: Path, stage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    job = _job(store)
    with monkeypatch.context() as m:
        _inject(m, stage, FAULTS["input"]())
        out = run_video(store, job, ("logmel",))
    assert out.status == "quarantined" and out.kind == "undecodable"
    for part in (f"file: {job.file}", f"participant: {job.participant_id}",
                 f"video: {job.video_id}", "expected: "):
        assert part in out.reason
    with monkeypatch.context() as m:
        _inject(m, stage, FAULTS["transient"]())
        with pytest.raises(MachineError, match="out of memory"):
            run_video(store, job, ("logmel",))


def test_a_run_records_bugs_with_tracebacks_and_goes_on(sample_release: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """A bug on one video: the others land, the bug is counted and its traceback kept
    in the store, nothing is quarantined, and the next run tries the video again."""
    store = tmp_path / "store"
    ingest(sample_release, store)
    videos = read_table(store, "videos")["video_id"].to_list()
    unlucky = videos[1]
    real = LogMelExtractor.compute

    def compute(self: LogMelExtractor, video: Any) -> Any:
        if video.video_id == unlucky:
            return {"oops": None}["missing"]  # a real KeyError inside an extractor
        return real(self, video)

    monkeypatch.setattr(LogMelExtractor, "compute", compute)
    report = extract_release(store, ("logmel",))
    assert list(report.bugs) == [unlucky] and len(report.extracted) == len(videos) - 1
    assert read_table_or_empty(store, "quarantine").height == 0
    bugs = read_table(store, "bugs")
    assert bugs["video_id"].to_list() == [unlucky]
    assert "KeyError" in bugs["traceback"][0] and "compute" in bugs["traceback"][0]
    monkeypatch.setattr(LogMelExtractor, "compute", real)
    again = extract_release(store, ("logmel",))
    assert again.extracted == [unlucky]


def test_a_fault_that_hits_every_video_stops_the_loop_at_once(
        sample_release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first video meets a full disk: the run stops there (one message, what to
    fix, how many remain), nothing is quarantined."""
    store = tmp_path / "store"
    ingest(sample_release, store)
    n = read_table(store, "videos").height
    _inject(monkeypatch, "write", OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(MachineError) as err:
        extract_release(store, ("logmel",))
    text = str(err.value)
    assert "disk full" in text and f"{n} of {n} videos remain pending" in text
    assert read_table_or_empty(store, "quarantine").height == 0
    runs = read_table(store, "extract_runs")
    assert runs.height == 1 and runs["extracted"][0] == 0  # recorded: the disk had room
