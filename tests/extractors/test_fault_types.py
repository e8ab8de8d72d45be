"""Errors keep the type they were raised with on their way to the one classification
(``store.failures.classify``): a bahfs error is never wrapped into another kind, so a
device fault met while loading a model stays the device's, a model error met on a
video stays the model's, and ffmpeg missing is a missing tool, not a broken video."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import ffmpeg
import numpy as np
import onnxruntime as ort
import pytest

from extractors import face_onnx, runtime
from extractors.audio import LogMelExtractor
from extractors.decode import ffmpeg_output
from extractors.face_onnx import FaceModel, FaceModelSpec
from extractors.runtime import device_fault_kind
from store.devices import parse_device
from store.errors import DeviceError, ModelError, ToolMissingError
from store.failures import classify


def test_a_device_fault_while_loading_a_face_model_stays_the_devices(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        tiny_face_model: Callable[..., Path]) -> None:
    model = tiny_face_model(tmp_path / "face.onnx")  # read at construction, loaded by load()
    lost = DeviceError("device cuda:0 asked for, but ONNX Runtime has no CUDA provider",
                       expected="onnxruntime-gpu and a GPU")

    def no_device(*args: object) -> None:
        raise lost

    monkeypatch.setattr(face_onnx, "session", no_device)
    face = FaceModel(model, FaceModelSpec())
    with pytest.raises(DeviceError) as info:
        face.load()
    assert info.value is lost
    fault = classify(info.value, device=device_fault_kind)
    assert (fault.owner, fault.kind, fault.stop) == ("machine", "device", True)


def test_a_session_keeps_the_device_error_of_its_providers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """CUDA asked for where ONNX Runtime has no CUDA provider: the provider check's
    own error, with what to do, not a second device error wrapped around it."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    with pytest.raises(DeviceError) as info:
        runtime._session(b"not loaded: the providers are refused first", 0,
                         parse_device("cuda:0"))
    assert "has no CUDA provider" in info.value.message
    assert info.value.expected is not None and "onnxruntime-gpu" in info.value.expected
    assert info.value.__cause__ is None


def test_a_model_error_inside_an_extractor_is_not_made_an_extraction_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    gone = ModelError("model file removed since this process loaded it", path="/m.onnx")

    def compute(self: LogMelExtractor, video: object) -> dict[str, np.ndarray]:
        raise gone

    monkeypatch.setattr(LogMelExtractor, "compute", compute)
    video = SimpleNamespace(path=Path("v.mp4"), participant_id="P1", video_id="P1__Q1")
    with pytest.raises(ModelError) as info:
        LogMelExtractor().extract(video)  # type: ignore[arg-type]
    assert info.value is gone
    assert classify(info.value).kind == "model"  # the run stops: not a bug


def test_a_missing_ffmpeg_is_a_missing_tool(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(b"never read")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    node = ffmpeg.input(str(video)).output("pipe:", format="null")
    with pytest.raises(ToolMissingError, match="ffmpeg is not installed"):
        ffmpeg_output(node, video, "the video", "a decodable video")
    try:
        ffmpeg_output(node, video, "the video", "a decodable video")
    except ToolMissingError as exc:
        fault = classify(exc)
    assert (fault.owner, fault.kind, fault.stop) == ("machine", "tool missing", True)
