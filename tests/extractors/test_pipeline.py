"""One decode feeding every extractor; the standalone `bahfs extract-video` output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import zarr
from typer.testing import CliRunner

from bahfs.cli import app
from bahfs.sample.script import VideoPlan
from extractors.audio import LogMelExtractor
from extractors.face_detect import FaceDetector
from extractors.pipeline import extract_all

Media = dict[str, tuple[Path, VideoPlan | None]]


def test_single_decode_matches_each_extractor_alone(media: Media) -> None:
    path = media["fps30"][0]
    face, mel = FaceDetector(), LogMelExtractor()
    together = {f.spec.extractor: f for f in extract_all(path, [face, mel])}
    alone = extract_all(path, [face])[0]
    for name, arr in alone.arrays.items():
        np.testing.assert_array_equal(together["face_detect"].arrays[name], arr)
    assert together["logmel"].n_frames == together["face_detect"].n_frames == alone.n_frames


def test_extract_video_cli_writes_frames_first_arrays(media: Media, tmp_path: Path) -> None:
    path, plan = media["silent"]
    assert plan is not None
    out = tmp_path / "one.zarr"
    result = CliRunner().invoke(app, ["extract-video", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    root = zarr.open_group(str(out), mode="r")
    assert root.attrs["n_frames"] == plan.n_frames
    arrays = [a for _, a in root.arrays()] + [a for _, g in root.groups()
                                               for _, a in g.arrays()]
    assert len(arrays) >= 8
    assert all(a.shape[0] == plan.n_frames for a in arrays)
    assert set(dict(root.groups())) == {"face", "logmel", "audio", "words"}
    assert root["face"].attrs["model_sha256"]
    assert "words" in json.loads(root.attrs["transcript"])  # no audio: an empty transcript
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["n_frames"] == plan.n_frames and side["transcript"]["words"] == []


def test_extract_video_cli_names_a_broken_file(media: Media, tmp_path: Path) -> None:
    path = media["garbage"][0]
    result = CliRunner().invoke(app, ["extract-video", str(path), "--out",
                                      str(tmp_path / "x.zarr")])
    assert result.exit_code == 2 and str(path) in result.output
