"""training.metrics against hand-computed cases and a transcription of the official code."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sklearn.metrics import auc, confusion_matrix, f1_score

from store.errors import ConfigError
from training.metrics import (
    average_precision,
    bah_metrics,
    video_logits,
    video_probability,
)


def official_ap(gt: np.ndarray, logits: np.ndarray) -> float:
    """The official average_precision, transcribed (loop over thresholds, sklearn auc)."""
    e = np.exp(logits)
    p = (e / e.sum(axis=1, keepdims=True))[:, 1]
    precs, recs = [], []
    for th in np.arange(0, 1, 0.001).tolist():
        pr = (p >= th).astype(float)
        tp = np.sum((pr == 1) & (gt == 1))
        fp = np.sum((pr == 1) & (gt == 0))
        fn = np.sum((pr == 0) & (gt == 1))
        precs.append(tp / (tp + fp) if tp + fp > 0 else 0.0)
        recs.append(tp / (tp + fn))
    return float(auc(np.array(recs), np.array(precs)))


def official(gt: np.ndarray, logits: np.ndarray) -> dict[str, object]:
    """The official bah_perfs, transcribed, for comparison only."""
    pred = np.argmax(logits, axis=1)
    f1 = f1_score(gt.tolist(), pred.tolist(), average=None)
    return {"accuracy": float((gt == pred).mean()), "f1_neg": float(f1[0]),
            "f1_pos": float(f1[1]), "avg_f1": float(f1.mean()),
            "w_f1": float(f1_score(gt.tolist(), pred.tolist(), average="weighted")),
            "ap_pos": official_ap(gt, logits),
            "confusion": confusion_matrix(gt, pred, normalize="true").tolist()}


@pytest.mark.parametrize("seed", range(8))
def test_matches_official_to_1e6(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 3000))
    gt = (rng.random(n) < rng.uniform(0.05, 0.6)).astype(int)
    logits = rng.normal(size=(n, 2)) + np.outer(gt, [0, rng.uniform(0, 2)])
    if seed % 2:  # coarse scores: many ties and exact threshold hits
        logits = np.round(logits, 1)
    ours, ref = bah_metrics(gt, logits), official(gt, logits)
    for k in ("accuracy", "f1_pos", "f1_neg", "avg_f1", "w_f1", "ap_pos"):
        assert abs(ours[k] - ref[k]) < 1e-6, (k, ours[k], ref[k])
    np.testing.assert_allclose(ours["confusion"], ref["confusion"], atol=1e-12)


def test_hand_computed_case() -> None:
    gt = np.array([1, 1, 0, 0, 0])
    # p(pos) = 0.9, 0.4, 0.6, 0.1, 0.1 -> argmax predictions 1, 0, 1, 0, 0
    p = np.array([0.9, 0.4, 0.6, 0.1, 0.1])
    m = bah_metrics(gt, np.log(np.stack([1 - p, p], axis=1)))
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["f1_pos"] == pytest.approx(0.5)  # tp 1, fp 1, fn 1
    assert m["f1_neg"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))  # tn 2, fn 1, fp 1
    assert m["avg_f1"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert m["w_f1"] == pytest.approx((0.5 * 2 + 2 / 3 * 3) / 5)
    np.testing.assert_allclose(m["confusion"], [[2 / 3, 1 / 3], [1 / 2, 1 / 2]])
    # thresholds up to 0.1: P=2/5, R=1; (0.1, 0.4]: 2/3, 1; (0.4, 0.6]: 1/2, 1/2;
    # (0.6, 0.9]: 1, 1/2; above 0.9: nothing predicted, P=0, R=0. Trapezoids over recall:
    recalls = [1.0, 0.5, 0.5, 0.0]
    precisions = [2 / 3, 0.5, 1.0, 0.0]
    want = sum((recalls[i] - recalls[i + 1]) * (precisions[i] + precisions[i + 1]) / 2
               for i in range(3))
    assert m["ap_pos"] == pytest.approx(want, abs=1e-9)


def test_nothing_predicted_positive_at_high_thresholds() -> None:
    gt = np.array([1, 0, 1, 0])
    p = np.array([0.3, 0.2, 0.25, 0.1])  # nothing reaches 0.3+ except one, none above
    ap = average_precision(p, gt)
    assert 0 < ap <= 1
    assert bah_metrics(gt, np.log(np.stack([1 - p, p], 1)))["f1_pos"] == 0.0


def test_all_one_class() -> None:
    gt = np.zeros(10, int)
    m = bah_metrics(gt, np.tile([2.0, 0.0], (10, 1)))
    assert m["accuracy"] == 1.0 and m["f1_neg"] == 1.0 and m["f1_pos"] == 0.0
    assert m["avg_f1"] == 0.5 and np.isnan(m["ap_pos"])
    gt1, lg1 = np.ones(10, int), np.tile([0.0, 1.0], (10, 1))
    m = bah_metrics(gt1, lg1)
    # every sample positive at p = 0.731: the official curve falls from (R=1, P=1)
    # straight to (R=0, P=0) above 0.731, so its AP is 0.5, not 1; we reproduce it
    assert m["f1_pos"] == 1.0 and m["ap_pos"] == pytest.approx(0.5)
    assert m["ap_pos"] == pytest.approx(official_ap(gt1, lg1), abs=1e-9)


def test_ties_go_to_the_negative_class() -> None:
    m = bah_metrics(np.array([1, 0]), np.zeros((2, 2)))
    assert m["accuracy"] == 0.5 and m["f1_pos"] == 0.0


def test_bad_shapes_raise() -> None:
    with pytest.raises(ConfigError):
        bah_metrics(np.array([0, 1]), np.zeros((3, 2)))
    with pytest.raises(ConfigError):
        bah_metrics(np.array([0, 2]), np.zeros((2, 2)))


def test_all_negative_reference_point() -> None:
    """Predicting every frame negative at the paper's 17 % positive rate: AVGF1 ~0.45."""
    gt = (np.arange(100_000) % 100 < 17).astype(int)
    m = bah_metrics(gt, np.tile([1.0, 0.0], (gt.size, 1)))
    assert m["avg_f1"] == pytest.approx((0 + 2 * 83 / (2 * 83 + 17)) / 2, abs=1e-9)
    assert 0.44 < m["avg_f1"] < 0.46


def test_video_probability() -> None:
    p = np.zeros(100)
    p[40:64] = 1.0
    assert video_probability(p) == pytest.approx(1.0)
    p[40:64] = 0.5
    p[41] = 1.0
    assert video_probability(p) == pytest.approx((0.5 * 23 + 1.0) / 24)
    assert video_probability(np.array([0.2, 0.4])) == pytest.approx(0.3)
    probs = np.array([0.1, 0.7, 0.5])
    lg = video_logits(probs)
    assert np.argmax(lg, 1).tolist() == [0, 1, 0]
    np.testing.assert_allclose(np.exp(lg[:, 1]), probs)


def test_one_million_frames_is_fast() -> None:
    rng = np.random.default_rng(0)
    gt = (rng.random(1_000_000) < 0.17).astype(int)
    logits = rng.normal(size=(1_000_000, 2))
    t0 = time.perf_counter()
    bah_metrics(gt, logits)
    elapsed = time.perf_counter() - t0
    print(f"bah_metrics on 1M frames: {elapsed:.3f} s")
    assert elapsed < 5.0  # generous bound against a hung implementation, not a benchmark
