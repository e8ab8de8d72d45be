"""One decode feeding every extractor; `bahfs extract-video` writing a one-video store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from bahfs.cli import app
from bahfs.sample.script import VideoPlan
from extractors.audio import LogMelExtractor
from extractors.face_detect import FaceDetector
from extractors.pipeline import extract_all
from store.backend import VideoRef
from store.reader import FeatureReader

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
    runner = CliRunner()
    result = runner.invoke(app, ["extract-video", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    reader = FeatureReader(out)  # a store like any other
    assert reader.n_frames("noaudio") == plan.n_frames
    sets = {spec.label: fs for fs, spec in reader.featuresets().items()}
    assert set(sets) == {"face", "logmel", "audio", "words"}
    arrays = [a for fs in sets.values() for a in reader.video(fs, "noaudio").values()]
    assert len(arrays) >= 8
    assert all(a.shape[0] == plan.n_frames for a in arrays)
    assert reader.featuresets()[sets["face"]].model_sha256
    words = reader.store.video_attrs(VideoRef(sets["words"], "noaudio", "noaudio"))
    assert json.loads(words["transcript"])["words"] == []  # no audio: an empty transcript
    assert runner.invoke(app, ["verify", str(out)]).exit_code == 0
    status = runner.invoke(app, ["status", str(out), "--json"])
    assert status.exit_code == 0, status.output
    assert {f["extracted"] for f in json.loads(status.output)["feature_sets"]} == {1}


def test_extract_video_cli_names_a_broken_file(media: Media, tmp_path: Path) -> None:
    path = media["garbage"][0]
    result = CliRunner().invoke(app, ["extract-video", str(path), "--out",
                                      str(tmp_path / "x.zarr")])
    assert result.exit_code == 2 and str(path) in result.output


def test_extract_video_cli_refuses_a_folder_that_is_not_a_store(media: Media,
                                                                 tmp_path: Path) -> None:
    path = media["silent"][0]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    runner = CliRunner()
    refused = runner.invoke(app, ["extract-video", str(path), "--out", str(mine)])
    assert refused.exit_code == 2 and "not a bahfs store" in refused.output
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    bad = runner.invoke(app, ["extract-video", str(path), "--out", str(tmp_path / "o"),
                              "--participant", "../up"])
    assert bad.exit_code == 2 and "--participant" in bad.output
    assert not (tmp_path / "o").exists()
