"""Challenge submissions: the format, the validator's p0 + p1 == 1 rule, the row order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from bahfs.cli import app
from store.errors import NotFoundError
from store.tables import read_table
from training.metrics import bah_metrics, video_logits
from training.predict import predict, probability_pair, submission_line
from training.run import TrainConfig, train


def _validator_accepts(line: str) -> bool:
    """The challenge validator's check: parse the text, add, compare exactly."""
    _, p0, p1, pred = line.split(",")
    return float(p0) + float(p1) == 1 and pred in ("0", "1")


def _values() -> np.ndarray:
    rng = np.random.default_rng(0)
    tiny = np.array([0.0, 1.0, 0.5, 1e-12, 1 - 1e-12, 5e-7, 1 - 5e-7, 0.4999995, 0.5000005])
    near = np.concatenate([rng.random(3000) * 1e-3, 1 - rng.random(3000) * 1e-3])
    halfway = (np.arange(0, 20000) + 0.5) / 1e6  # where the sixth decimal rounds
    return np.concatenate([tiny, near, halfway, 1 - halfway, rng.random(20000)])


def test_every_six_decimal_value_gives_a_pair_that_adds_up() -> None:
    # probability_pair raises where the parsed floats would not add up to 1.0
    pairs = [probability_pair(k / 1e6) for k in range(10**6 + 1)]
    assert pairs[0] == ("1.000000", "0.000000") and pairs[-1] == ("0.000000", "1.000000")


@pytest.mark.parametrize("decimals", [6, 3, 12, 17])
def test_every_probability_gives_a_pair_the_validator_accepts(decimals: int) -> None:
    worst = 0.0
    values = _values() if decimals == 6 else _values()[::7]
    for p in values:
        t0, t1 = probability_pair(float(p), decimals)
        assert float(t0) + float(t1) == 1.0, (p, t0, t1)
        assert 0.0 <= float(t0) <= 1.0 and 0.0 <= float(t1) <= 1.0
        worst = max(worst, abs(float(t1) - p))
    assert worst <= 0.5 * 10.0 ** -decimals + 1e-16  # rounded to the last place
    assert all(_validator_accepts(submission_line("v.mp4", float(p))) for p in values)


def test_plain_one_minus_p_would_fail_the_validator() -> None:
    """Why the pair is chosen: printing 1 - p and p with six decimals rounds both up
    at half-way values, and the validator sees 1.000001."""
    naive = [(f"{1 - p:.6f}", f"{p:.6f}") for p in _values()]
    assert sum(float(a) + float(b) != 1.0 for a, b in naive) > 1000


def test_hard_prediction_is_the_argmax() -> None:
    assert submission_line("v", 0.9).endswith(",1")
    assert submission_line("v", 0.1).endswith(",0")
    assert submission_line("v", 0.5).endswith(",0")  # a tie goes to class 0, as argmax


@pytest.fixture(scope="module")
def run(synth: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    return train(TrainConfig(store=synth, model="mlp", modalities=("face",), epochs=1,
                             out=out), log=lambda *_: None)


def test_split_submission(run: Path, synth: Path, tmp_path: Path) -> None:
    rows = predict(run, tmp_path / "test.csv", split="test")
    lines = (tmp_path / "test.csv").read_text().splitlines()
    videos = read_table(synth, "videos")
    test_ids = sorted(videos.filter(videos["split"] == "test")["release_id"].to_list())
    assert [ln.split(",")[0] for ln in lines] == test_ids == [r for r, _ in rows]
    assert all(_validator_accepts(ln) for ln in lines)
    # the same probabilities the run's own video-level evaluation uses: its metrics
    # come back from them, and the file holds them to six decimals
    results = json.loads((run / "results.json").read_text())["splits"]["test"]
    assert len(lines) == results["videos"]
    label = dict(videos.select("release_id", "global_label").iter_rows())
    p1 = np.array([p for _, p in rows])
    again = bah_metrics(np.array([label[r] for r, _ in rows]), video_logits(p1))
    for key in ("avg_f1", "f1_pos", "f1_neg", "ap_pos"):
        assert again[key] == pytest.approx(results["video"][key], abs=1e-12), key
    assert np.abs(np.array([float(ln.split(",")[2]) for ln in lines]) - p1).max() <= 5e-7
    assert p1.std() > 0  # probabilities, not a constant


def test_video_csv_order_and_spelling_are_kept(run: Path, synth: Path, tmp_path: Path) -> None:
    videos = read_table(synth, "videos")
    refs = videos.filter(videos["split"] != "train")["release_id"].to_list()[::-1]
    csv = tmp_path / "video.csv"
    csv.write_text("video_id\n" + "\n".join(refs) + "\n")
    out = tmp_path / "sub.csv"
    result = CliRunner().invoke(app, ["predict", str(run), "--video-csv", str(csv),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert [ln.split(",")[0] for ln in lines] == refs
    assert all(_validator_accepts(ln) for ln in lines)
    csv.write_text("Videos/99999/Visite_1/99999_Question_1_2024-01-01 10-00-00_Video.mp4\n")
    with pytest.raises(NotFoundError, match="not in the store"):
        predict(run, out, video_csv=csv)


def test_a_video_not_extracted_is_an_error_not_a_gap(run: Path, synth: Path,
                                                     tmp_path: Path) -> None:
    import shutil

    from store.layout import video_dir
    from store.reader import FeatureReader

    store = tmp_path / "store"
    shutil.copytree(synth, store)
    videos = read_table(store, "videos").filter(pl.col("split") == "test")
    vid, pid = videos.select("video_id", "participant_id").row(0)
    shutil.rmtree(video_dir(store, FeatureReader(store).resolve("face"), pid, vid))
    with pytest.raises(NotFoundError, match="not extracted") as info:
        predict(run, tmp_path / "sub.csv", split="test", store=store)
    assert vid in str(info.value)
    csv = tmp_path / "video.csv"
    csv.write_text("\n".join(videos["release_id"]) + "\n")
    with pytest.raises(NotFoundError, match="not extracted"):
        predict(run, tmp_path / "sub.csv", video_csv=csv, store=store)


@pytest.mark.slow  # real videos: ingest, log-mel extraction, training, predictions
def test_videos_with_withheld_labels_are_extracted_and_predicted(
        mutable_release: Path, tmp_path: Path) -> None:
    from flows.engine import extract_release
    from store.ingest import ingest
    from store.verify import verify_store
    from tests.store.release.test_variants import withhold_test_labels

    refs = withhold_test_labels(mutable_release)
    store = tmp_path / "store"
    report = ingest(mutable_release, store)
    assert not report.quarantined
    videos = read_table(store, "videos")
    held = videos.filter(videos["release_id"].is_in(refs))
    assert held.height == len(refs) and held["global_label"].null_count() == len(refs)
    extract_release(store, ("logmel",))
    assert [p for p in verify_store(store) if p.severity == "error"] == []
    run = train(TrainConfig(store=store, model="mlp", modalities=("logmel",), epochs=1,
                            out=tmp_path / "runs"), log=lambda *_: None)
    results = json.loads((run / "results.json").read_text())["splits"]
    assert "error" in results["test"]  # nothing labelled to evaluate on
    out = tmp_path / "test.csv"
    rows = predict(run, out, split="test")
    assert sorted(r for r, _ in rows) == sorted(refs)
    assert all(_validator_accepts(ln) for ln in out.read_text().splitlines())
