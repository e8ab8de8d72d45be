"""Worker state made explicit: a worker context per (plan, runtime) holds the loaded
extractors, the model thread, the whisperX runner and the stamps of its model files;
the model-file check covers its own plan only; model threads end with their context;
the process's cache of contexts is bounded and closes what it evicts. Also: a face
model's outputs are read from its ONNX graph, without a session."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest

from extractors import runtime
from extractors.context import ContextCache, WorkerContext
from extractors.face import FaceConfig, FaceExtractor
from extractors.plan import entry, plan_from_names
from extractors.runtime import Runtime
from store.devices import parse_device
from store.errors import ModelError

CPU = Runtime(parse_device("cpu"), 1)
BATCHED = Runtime(parse_device("cpu"), 1, 8)


def _plan(model: Path) -> Any:
    return (entry("face", "face", {"model_path": str(model),
                                   "detector": {"input_width": 160}}),)


def test_face_outputs_come_from_the_graph_without_a_session(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        tiny_face_model: Callable[..., Path]) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a session was created")

    runtime._session.cache_clear()
    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)
    fixed = tiny_face_model(tmp_path / "fixed.onnx")
    face = FaceExtractor(FaceConfig(model_path=str(fixed)))
    assert (face.outputs()[0].name, face.outputs()[0].shape) == ("y", (4,))
    assert face.spec().id.startswith("face-") and not face.loaded
    symbolic = tiny_face_model(tmp_path / "symbolic.onnx", "W")
    with pytest.raises(ModelError, match=r"symbolic width.*symbolic\.onnx.*widths"):
        FaceExtractor(FaceConfig(model_path=str(symbolic)))
    (tmp_path / "symbolic.json").write_text(json.dumps({"widths": {"y": 4}}))
    given = FaceExtractor(FaceConfig(model_path=str(symbolic)))
    assert given.model.outputs[0].width == 4


def test_a_declared_width_the_model_does_not_give_fails_when_loaded(tmp_path: Path,
        tiny_face_model: Callable[..., Path]) -> None:
    symbolic = tiny_face_model(tmp_path / "symbolic.onnx", "W")
    (tmp_path / "symbolic.json").write_text(json.dumps({"widths": {"y": 5}}))  # it gives 4
    face = FaceExtractor(FaceConfig(model_path=str(symbolic)))
    with pytest.raises(ModelError, match=r"shape \[2, 4\].*\(2, 5\)"):
        face.load()


def test_the_model_check_covers_the_contexts_own_plan(tmp_path: Path,
        tiny_face_model: Callable[..., Path]) -> None:
    model = tiny_face_model(tmp_path / "face.onnx")
    face = WorkerContext.open(_plan(model), CPU)
    logmel = WorkerContext.open(plan_from_names(["logmel"]), CPU)
    try:
        assert str(model.resolve()) in face.stamps and logmel.stamps == {}
        model.rename(tmp_path / "gone.onnx")
        with pytest.raises(ModelError, match="model file removed"):
            face.check_models()
        logmel.check_models()  # another plan's file is none of its business
    finally:
        face.close()
        logmel.close()


def test_model_threads_end_with_their_context(tmp_path: Path,
        tiny_face_model: Callable[..., Path]) -> None:
    ctx = WorkerContext.open(_plan(tiny_face_model(tmp_path / "face.onnx")), BATCHED)
    server = ctx.services.server
    assert server is not None
    face = ctx.extractors[0]
    assert isinstance(face, FaceExtractor) and face.loaded
    with ctx.video():
        face.detector.detect(np.zeros((2, 64, 64, 3), np.uint8))  # through the thread
    assert server.running and server.stats.calls >= 1
    ctx.close()
    assert not server.running
    with pytest.raises(RuntimeError, match="closed"):
        face.detector.detect(np.zeros((1, 64, 64, 3), np.uint8))


def test_the_context_cache_is_bounded_and_closes_what_it_evicts(tmp_path: Path,
        tiny_face_model: Callable[..., Path]) -> None:
    cache = ContextCache(size=1)
    face_plan = _plan(tiny_face_model(tmp_path / "face.onnx"))
    with cache.use(face_plan, BATCHED) as first:
        with cache.use(face_plan, BATCHED) as again:
            assert again is first  # one context per (plan, runtime)
        server = first.services.server
        assert server is not None
        with cache.use(plan_from_names(["logmel"]), BATCHED):
            assert first._evicted  # the oldest, past the bound
            server.run(first.extractors[0].detector.sess.session, None,  # still usable
                       {"input.1": np.zeros((1, 3, 32, 32), np.float32)})
        assert cache.built == 2
    # released: now closed
    with pytest.raises(RuntimeError, match="closed"):
        server.run(object(), None, {"x": np.zeros((1, 1))})
    cache.close()


def test_whisper_width_is_read_from_model_bin(tmp_path: Path) -> None:
    from extractors.models import whisper_folder, whisper_width

    assert whisper_width(whisper_folder("")[0]) == 384  # tiny.en, without loading it
    (tmp_path / "model.bin").write_bytes(b"\x06\x00\x00\x00\x0b\x00Whisper")  # cut short
    with pytest.raises(ModelError, match=r"unreadable CTranslate2 model.*model\.bin"):
        whisper_width(tmp_path)


def test_model_digests_are_cached_by_file_identity(tmp_path: Path) -> None:
    import hashlib
    import os

    model = tmp_path / "m.onnx"
    model.write_bytes(b"first")
    assert runtime.sha256_cached(model) == hashlib.sha256(b"first").hexdigest()
    model.write_bytes(b"second!")  # rewritten: another size and time, hashed again
    assert runtime.sha256_cached(model) == hashlib.sha256(b"second!").hexdigest()
    replaced = tmp_path / "new.onnx"
    replaced.write_bytes(b"third!!")  # same size, renamed over it: another inode
    os.replace(replaced, model)
    assert runtime.sha256_cached(model) == hashlib.sha256(b"third!!").hexdigest()
