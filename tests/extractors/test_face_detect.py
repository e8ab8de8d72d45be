"""Face detection (CenterFace through ONNX Runtime) against the generator's truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bahfs.sample.script import VideoPlan
from extractors.base import DecodedVideo
from extractors.decode import open_video
from extractors.face_detect import TEMPLATE_112, FaceDetectConfig, FaceDetector, align
from store.errors import ModelError

Media = dict[str, tuple[Path, VideoPlan | None]]


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def _decoded(path: Path, vid: str = "v") -> DecodedVideo:
    stream = open_video(path)
    for _ in stream:
        pass
    return DecodedVideo(path, vid, "P1", stream.info, np.array(stream.timestamps), None)


@pytest.mark.slow
def test_has_face_matches_where_the_face_was_drawn(sample_release: Path,
                                                   detector: FaceDetector) -> None:
    truth = json.loads((sample_release / "bahfs_truth.json").read_text())
    checked_absent = 0
    for rel, info in truth.items():
        out = detector.extract(_decoded(sample_release / rel)).arrays
        gt = np.zeros(info["n_frames"], bool)
        for s, e in info["face_runs"]:
            gt[s:e] = True
        assert out["has_face"].shape == gt.shape
        assert (out["has_face"] == gt).mean() > 0.95, rel
        for ev in info["face_events"]:
            if ev["kind"] in ("absent", "turn"):
                mid = int((ev["start_s"] + ev["end_s"]) / 2 * info["fps"])
                assert not out["has_face"][mid], (rel, ev)
                checked_absent += 1
        found = out["has_face"]
        box, lm = out["box"][found], out["landmarks"][found]
        assert (lm[:, 0::2] >= box[:, [0]] - 2).all() and (lm[:, 0::2] <= box[:, [2]] + 2).all()
        assert (out["box"][~found] == 0).all() and (out["score"][~found] == 0).all()
    assert checked_absent > 0


def test_rows_equal_decoded_frames_at_30_fps(media: Media, detector: FaceDetector) -> None:
    video = _decoded(media["fps30"][0])
    out = detector.extract(video)
    assert all(a.shape[0] == video.n_frames for a in out.arrays.values())
    assert out.arrays["has_face"].mean() > 0.5


def test_alignment_puts_the_eyes_on_the_template(media: Media, detector: FaceDetector) -> None:
    frames = next(iter(open_video(media["speech24"][0], batch=4)))
    _, marks, _, found = detector.detect(frames)
    assert found[0]
    crop = align(frames[0], marks[0], 256)
    assert crop.shape == (256, 256, 3)
    again = detector.detect(np.stack([np.ascontiguousarray(
        np.pad(crop, ((32, 32), (32, 32), (0, 0))))]))  # the aligned face, re-detected
    eyes = again[1][0][:4].reshape(2, 2) - 32
    np.testing.assert_allclose(eyes, TEMPLATE_112[:2] * 256 / 112, atol=12)


def test_provenance_and_checks(detector: FaceDetector, tmp_path: Path) -> None:
    spec = detector.spec()
    assert spec.model_sha256 == FaceDetectConfig().model_sha256
    assert detector.run_provenance()["provider"] in ("CPUExecutionProvider",
                                                     "CUDAExecutionProvider")
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="expected SHA-256"):
        FaceDetector(FaceDetectConfig(model_path=str(bad)))


def test_detection_is_shared_by_the_face_extractors_of_one_video(
        media: dict[str, tuple[Path, object]]) -> None:
    from extractors.face import FaceConfig, FaceExtractor
    from extractors.face_crop import FaceCropExtractor
    from extractors.pipeline import extract_all

    path = media["fps30"][0]
    alone_face, alone_crop = FaceExtractor(), FaceCropExtractor()
    want_face = extract_all(path, [alone_face])[0].arrays
    want_crop = extract_all(path, [alone_crop])[0].arrays
    face, crop = FaceExtractor(), FaceCropExtractor()
    got_face, got_crop = (f.arrays for f in extract_all(path, [face, crop]))
    assert face.detector.runs > 0 and crop.detector.runs == 0  # one detection, two users
    for want, got in ((want_face, got_face), (want_crop, got_crop)):
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])
    other = FaceExtractor(FaceConfig(detector=FaceDetectConfig(threshold=0.9)))
    extract_all(path, [face, other])
    assert other.detector.runs > 0  # other options: its own detection
