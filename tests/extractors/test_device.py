"""The device setting reaching every model of the extractors, passed explicitly (a
:class:`Runtime`; nothing below the entry points reads the environment): decisions
tested on this CPU machine (CUDA asked for and not had is an error, auto falls back
with one warning, the device is recorded per video); a gpu-marked comparison of CPU
and GPU values runs where CUDA is."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from extractors import runtime
from extractors.audio import LogMelExtractor
from extractors.face import FaceConfig, FaceExtractor
from extractors.face_detect import FaceDetectConfig, FaceDetector
from extractors.models import load_whisper
from extractors.pipeline import extract_all
from extractors.runtime import Runtime
from extractors.word_model import WordEncoder
from store.devices import parse_device
from store.errors import ConfigError, DeviceError

Media = dict[str, tuple[Path, object]]
HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    runtime._WARNED.clear()


@pytest.mark.skipif(HAS_CUDA, reason="checks a machine without a GPU")
def test_cuda_that_cannot_be_had_is_an_error_everywhere(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    cuda = Runtime(parse_device("cuda"))
    monkeypatch.setenv("BAHFS_DEVICE", "cpu")  # not read below the entry points
    with pytest.raises(DeviceError, match=r"cuda:0 asked for.*no CUDA provider"):
        FaceDetector(runtime=cuda).load()
    with pytest.raises(DeviceError, match=r"cuda:0 asked for.*CTranslate2 sees 0"):
        load_whisper("", "int8", cuda)
    with pytest.raises(DeviceError, match=r"cuda:0 asked for"):
        WordEncoder(runtime=cuda).load()
    with pytest.raises(ConfigError, match=r"auto, cpu, cuda or cuda:N"):
        parse_device("gpu")


@pytest.mark.skipif(HAS_CUDA, reason="checks a machine without a GPU")
def test_auto_falls_back_with_one_warning_and_records_the_device(
        media: Media, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
        ) -> None:
    monkeypatch.setenv("BAHFS_DEVICE", "cuda")  # not read below the entry points
    with caplog.at_level(logging.WARNING, logger="bahfs.extractors"):
        a, b = FaceDetector(), FaceDetector(runtime=Runtime(parse_device("auto")))
        a.load()
        b.load()
    warned = [r for r in caplog.records if "no GPU" in r.getMessage()]
    assert len(warned) == 1 and a.device == b.device == "cpu"
    out = extract_all(media["fps30"][0], [a, LogMelExtractor()])
    assert [f.attrs["device"] for f in out] == ["cpu", "cpu"]
    assert runtime.provider_list(parse_device("cpu")) == ["CPUExecutionProvider"]


@pytest.mark.parametrize(("message", "fault"), [
    ("CUDA failure 2: out of memory ; GPU=0", True),
    ("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : CUBLAS_STATUS_ALLOC_FAILED", True),
    ("CUDA error: an illegal memory access was encountered", True),
    ("Failed to allocate memory for requested buffer of size 1073741824", True),
    ("Invalid argument: input 'face' has shape (2, 3)", False),
    ("moov atom not found", False),
])
def test_device_faults_are_told_from_bad_input(message: str, fault: bool) -> None:
    assert runtime.device_fault(RuntimeError(message)) is fault


def test_out_of_memory_halves_the_face_batch(media: Media, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit test of the halving: the detector's batch call fails as CUDA does when a
    batch is too big (this machine cannot run out of GPU memory). Every frame is
    detected (keyframe stride 1), so every frame must go through a served call. On
    the first 45 frames of a sample video."""
    clip = tmp_path / "clip.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(media["fps30"][0]), "-frames:v", "45",
                    "-an", "-c:v", "libx264", str(clip)], check=True)
    face = FaceExtractor(FaceConfig(detector=FaceDetectConfig(keyframe_stride=1)))
    want = extract_all(clip, [face])[0].arrays
    real = face.detector.detect
    sizes: list[int] = []

    def small_batches_only(chunk: np.ndarray) -> tuple[np.ndarray, ...]:
        sizes.append(len(chunk))
        if len(chunk) > 5:
            raise RuntimeError("CUDA failure 2: out of memory ; GPU=0")
        return real(chunk)

    monkeypatch.setattr(face.detector, "detect", small_batches_only)
    got = extract_all(clip, [face])[0].arrays
    served = [s for s in sizes if s <= 5]  # the calls that went through
    assert max(sizes) > 5 and served
    assert all(n // 2 in sizes and n - n // 2 in sizes for n in sizes if n > 5)  # halves
    assert sum(served) == len(next(iter(want.values())))  # every frame once, none lost
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])

    monkeypatch.setattr(face.detector, "detect", real)
    run = face.model.run
    faces: list[int] = []

    def few_faces_only(frames: np.ndarray, marks: np.ndarray) -> list[np.ndarray]:
        faces.append(len(frames))
        if len(frames) > 3:
            raise RuntimeError("CUDA failure 2: out of memory ; GPU=0")
        return run(frames, marks)

    monkeypatch.setattr(face.model, "run", few_faces_only)
    got = extract_all(clip, [face])[0].arrays  # the face model in halves
    assert max(faces) > 3
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])

    def always(chunk: np.ndarray) -> tuple[np.ndarray, ...]:
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(face.detector, "detect", always)
    with pytest.raises(DeviceError, match="illegal memory access"):
        extract_all(clip, [face], video_id="v", participant_id="P")


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="needs onnxruntime-gpu and a GPU")
def test_gpu_values_are_close_to_cpu_values(media: Media) -> None:
    cpu_face = FaceExtractor(runtime=Runtime(parse_device("cpu")))
    cpu = extract_all(media["speech24"][0], [cpu_face])[0].arrays
    gpu_face = FaceExtractor(runtime=Runtime(parse_device("cuda")))
    gpu_face.load()  # the device is known once the models are loaded
    assert gpu_face.device == "cuda:0"
    gpu = extract_all(media["speech24"][0], [gpu_face])[0].arrays
    np.testing.assert_array_equal(gpu["has_face"], cpu["has_face"])
    for name in ("embedding", "emotions", "box", "landmarks"):
        diff = np.abs(gpu[name].astype(np.float32) - cpu[name].astype(np.float32)).max()
        print(f"{name}: max |gpu - cpu| = {diff:.2e}")
        assert diff < 0.05


def test_out_of_memory_halves_the_behaviour_models_batch() -> None:
    """The behaviour models' calls (mesh, iris, body) halve on device out-of-memory
    like the face detector's: a stand-in session fails as CUDA does above 2 rows."""
    from extractors.behaviour_models import LoadedModel

    calls: list[int] = []

    class TwoRowsAtMost:
        def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            x = feeds["input"]
            calls.append(len(x))
            if len(x) > 2:
                raise RuntimeError("CUDA failure 2: out of memory ; GPU=0")
            return [x.reshape(len(x), -1).sum(1, keepdims=True), x[:, :1, 0, 0] * 2]

    model = LoadedModel(Path("mp_face_landmark.onnx"), "", {"input": "input"},
                        TwoRowsAtMost())
    x = np.arange(7 * 3 * 2 * 2, dtype=np.float32).reshape(7, 3, 2, 2)
    total, first = model.run(["a", "b"], x)
    np.testing.assert_array_equal(total[:, 0], x.reshape(7, -1).sum(1))
    np.testing.assert_array_equal(first[:, 0], x[:, 0, 0, 0] * 2)
    assert calls[0] == 7 and max(c for c in calls if c <= 2) <= 2
    assert sum(c for c in calls if c <= 2) == 7  # every row served once
