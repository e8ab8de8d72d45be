"""Metrics beside the official ones: threshold-free AP, per participant, per group."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from store.consent import subject_hash
from training.metrics import bah_metrics
from training.reports import grouped, metrics, per_participant, threshold_free_ap
from training.run import TrainConfig, train


def _logits(p: np.ndarray) -> np.ndarray:
    return np.stack([np.log1p(-p), np.log(p)], axis=1)


def test_threshold_free_ap_where_the_official_grid_gives_zero() -> None:
    gt = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.99910, 0.99920, 0.99930, 0.99960, 0.99970, 0.99980])  # ranked right
    m = metrics(gt, _logits(p))
    assert m["ap_pos"] == 0.0  # the official AP: every p is above the last threshold
    assert m["ap_pos_threshold_free"] == pytest.approx(1.0)
    assert {k: v for k, v in m.items() if k != "ap_pos_threshold_free"} == \
        bah_metrics(gt, _logits(p))  # the official ones untouched
    assert np.isnan(threshold_free_ap(np.zeros(4), np.full(4, 0.5)))


def test_per_participant_mean_and_std_and_groups() -> None:
    rng = np.random.default_rng(3)
    gt = {v: (rng.random(50) < 0.4).astype(int) for v in ("a1", "a2", "b1", "c1")}
    logits = {v: rng.standard_normal((50, 2)) for v in gt}
    owner = {"a1": "82553", "a2": "82553", "b1": "82554", "c1": "82555"}
    out = per_participant(gt, logits, owner)
    each = out["participants"]
    assert set(each) == {subject_hash(p)[:16] for p in owner.values()}
    assert "82553" not in json.dumps(out)  # no participant id in what a run keeps
    first = each[subject_hash("82553")[:16]]
    want = bah_metrics(np.concatenate([gt["a1"], gt["a2"]]),
                       np.concatenate([logits["a1"], logits["a2"]]))
    assert first["avg_f1"] == pytest.approx(want["avg_f1"]) and first["frames"] == 100
    values = [m["avg_f1"] for m in each.values()]
    assert out["summary"]["avg_f1"] == {"mean": pytest.approx(np.mean(values)),
                                        "std": pytest.approx(np.std(values)), "n": 3}
    groups = grouped(gt, logits, {"a1": "18-24", "a2": "18-24", "b1": "25-34",
                                  "c1": "18-24"})
    assert {g: m["frames"] for g, m in groups.items()} == {"18-24": 150, "25-34": 50}


def test_a_run_reports_participants_and_groups(synth: Path, tmp_path: Path) -> None:
    run = train(TrainConfig(store=synth, model="mlp", modalities=("face",), epochs=1,
                            out=tmp_path), log=lambda *_: None)
    test = json.loads((run / "results.json").read_text())["splits"]["test"]
    assert "ap_pos_threshold_free" in test["frame"] and "ap_pos" in test["video"]
    summary = test["per_participant"]["summary"]
    assert summary["avg_f1"]["n"] == len(test["per_participant"]["participants"]) >= 2
    assert set(test["by_group"]) == {"age_range", "gender"}
    for groups in test["by_group"].values():
        assert sum(g["frames"] for g in groups.values()) == test["frames"]
