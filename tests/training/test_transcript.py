"""The transcript baseline: one vector per video, logistic regression, official metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from bahfs.cli import app
from store.features import ArraySpec, FeatureSetSpec, VideoFeatures
from store.reader import FeatureReader
from store.tables import read_table, write_table
from store.writer import FeatureWriter
from training.data import Source
from training.metrics import bah_metrics, video_logits
from training.transcript import transcript_vector


def test_each_word_counts_once(tmp_path: Path) -> None:
    spec = FeatureSetSpec("words", {"t": 1}, "ab" * 32, (
        ArraySpec("word_embedding", "float16", (4,)), ArraySpec("has_word", "bool"),
        ArraySpec("word_index", "int32")))
    n = 10
    index = np.array([-1, 0, 0, 0, -1, 1, 1, -1, 2, -1], np.int32)  # word 0 spans 3 frames
    vectors = np.zeros((n, 4), np.float16)
    for w, v in ((0, 1.0), (1, 2.0), (2, 6.0)):
        vectors[index == w] = v
    write_table(tmp_path, "videos", pl.DataFrame([{
        "video_id": "v", "participant_id": "p", "visit": "Visite_1", "question": 1,
        "release_id": "Videos/p/Visite_1/v.mp4", "path": "Videos/p/Visite_1/v.mp4",
        "source": "", "duration_s": n / 24, "fps": 24.0, "n_frames": n, "has_audio": True,
        "global_label": 0, "split": "train", "annotator_id": None, "transcript": "a b c"}]))
    FeatureWriter(tmp_path).write(VideoFeatures(spec, "v", "p", np.arange(n) / 24.0, {
        "word_embedding": vectors, "has_word": index >= 0, "word_index": index}))
    src = Source("words", spec.id, "word_embedding", 4, spec.model_sha256)
    got = transcript_vector(FeatureReader(tmp_path), src, "v")
    np.testing.assert_allclose(got, np.full(4, 3.0))  # (1 + 2 + 6) / 3, not by frames


def test_transcript_baseline_from_the_cli(synth: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", str(synth), "--model", "transcript",
                                      "--modalities", "face", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "transcript baseline" in result.output and "ap_free" in result.output
    run = next(tmp_path.iterdir())
    results = json.loads((run / "results.json").read_text())
    assert results["config"]["model"] == "transcript"
    test = results["splits"]["test"]
    assert test["video"]["avg_f1"] > 0.6  # the planted signal shifts A/H videos' means
    assert test["per_participant"]["summary"]["avg_f1"]["n"] >= 2


def test_metrics_follow_from_the_written_probabilities(synth: Path, tmp_path: Path) -> None:
    """The submission holds each video's probability; the video metrics are the official
    ones on it, the frame metrics the official ones with it on every frame."""
    from training.transcript import train_transcript

    run = train_transcript(synth, "face", out=tmp_path, log=lambda *_: None)
    test = json.loads((run / "results.json").read_text())["splits"]["test"]
    videos = read_table(synth, "videos").filter(pl.col("split") == "test").sort("release_id")
    lines = (run / "submission_test.csv").read_text().splitlines()
    assert [ln.split(",")[0] for ln in lines] == videos["release_id"].to_list()
    p = np.array([float(ln.split(",")[2]) for ln in lines])
    want = bah_metrics(videos["global_label"].to_numpy(), video_logits(p))
    assert test["video"]["avg_f1"] == pytest.approx(want["avg_f1"], abs=1e-5)
    reader = FeatureReader(synth)
    gt = np.concatenate([reader.labels(v) for v in videos["video_id"]])
    frames = np.concatenate([np.repeat(video_logits(p[i:i + 1]), n, axis=0)
                             for i, n in enumerate(videos["n_frames"])])
    assert test["frame"]["avg_f1"] == pytest.approx(bah_metrics(gt, frames)["avg_f1"],
                                                    abs=1e-5)
