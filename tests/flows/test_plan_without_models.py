"""Planning a run loads no model: a rerun with nothing pending computes its feature-set
ids and finds nothing to do without creating an ONNX Runtime session or loading a
CTranslate2 model (both made to raise here), in seconds, on the demo's store (face,
logmel, audio and words extracted: every model of the default plan)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import onnxruntime
import pytest

from extractors import DEFAULT_EXTRACTORS, models, runtime
from extractors.context import CONTEXTS
from extractors.plan import plan_from_names
from flows.engine import extract_release
from flows.job import feature_set_ids, pending_jobs
from store.tables import read_table, read_table_or_empty


class ModelLoaded(AssertionError):
    pass


def _refuse(what: str) -> Any:
    def refuse(*args: object, **kwargs: object) -> None:
        raise ModelLoaded(f"planning created {what}")
    return refuse


@pytest.fixture
def no_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """ONNX Runtime sessions and CTranslate2/faster-whisper models raise; nothing
    loaded earlier in this process is reused (the session and Whisper caches are
    emptied)."""
    import ctranslate2
    import faster_whisper

    runtime._session.cache_clear()
    models._load_whisper.cache_clear()
    monkeypatch.setattr(onnxruntime, "InferenceSession", _refuse("an ONNX Runtime session"))
    monkeypatch.setattr(ctranslate2.models, "Whisper", _refuse("a CTranslate2 Whisper"))
    monkeypatch.setattr(faster_whisper, "WhisperModel", _refuse("a faster-whisper model"))


def test_the_guard_catches_a_model_load(no_models: None) -> None:
    from extractors.face_detect import FaceDetector

    with pytest.raises(ModelLoaded):
        FaceDetector().load()  # the same models, loaded: the guard is real
    with pytest.raises(ModelLoaded):
        models.load_whisper("", "int8")


def test_a_rerun_with_nothing_pending_plans_without_models(
        demo_run: Any, tmp_path: Path, no_models: None) -> None:
    store = tmp_path / "store"
    shutil.copytree(demo_run.store, store)  # the run below records itself in the store
    plan = plan_from_names(DEFAULT_EXTRACTORS)
    built = CONTEXTS.built
    t0 = time.perf_counter()
    ids = feature_set_ids(plan)
    todo, done = pending_jobs(store, ids)
    planned = time.perf_counter() - t0
    stored = set(read_table(store, "featuresets")["feature_set"].to_list())
    assert set(ids) <= stored  # the ids of today's stores, found without a model
    quarantined = set(read_table_or_empty(store, "quarantine")["video_id"].to_list())
    videos = set(read_table(store, "videos")["video_id"].to_list())
    assert todo == [] and set(done) == videos - quarantined and done
    report = extract_release(store, plan)  # the in-process run loop, nothing to do
    total = time.perf_counter() - t0
    assert report.extracted == [] and set(report.skipped) == set(done)
    assert report.feature_sets == ids
    assert CONTEXTS.built == built  # no worker context: no model loaded anywhere
    assert planned < 15 and total < 30, (planned, total)  # seconds, on 2 busy cores
