"""The official BAH evaluation metrics, vectorised (numpy only).

Matches the official ``bah_perfs`` (the BAH evaluation code, sbelharbi/bah-dataset):

- hard prediction = argmax of the two class scores (ties go to class 0);
- accuracy; F1 of each class; AVGF1 = their unweighted mean; weighted F1 (by
  true-class support); confusion matrix normalised by true class (rows: truth);
- AP of the positive class: p = softmax(logits)[:, 1]; for every threshold t in
  ``np.arange(0, 1, 0.001)`` predict positive where ``p >= t``; precision is 0
  where nothing is predicted positive; AP is the trapezoid area of precision over
  recall (recall falls as t rises, and the area is taken as sklearn's ``auc``
  does for a decreasing x).

Differences, on purpose: both classes are always reported (a class with neither
true nor predicted samples has F1 0, where the official code would stop on an
assert); AP is NaN when there is no positive sample (the official code asserts);
the softmax subtracts the row maximum (same values, no overflow).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from store.errors import ConfigError

THRESHOLDS = np.arange(0, 1, 0.001)  # exactly the official grid (1000 values)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def _f1(tp: float, fp: float, fn: float) -> float:
    den = 2 * tp + fp + fn
    return float(2 * tp / den) if den > 0 else 0.0


def average_precision(p_pos: np.ndarray, gt: np.ndarray) -> float:
    """The official thresholded AP of the positive class (NaN without positives)."""
    pos = np.sort(p_pos[gt == 1])
    n_pos = pos.size
    if n_pos == 0:
        return float("nan")
    allp = np.sort(p_pos)
    n = allp.size
    predicted = n - np.searchsorted(allp, THRESHOLDS, side="left")  # count of p >= t
    tp = n_pos - np.searchsorted(pos, THRESHOLDS, side="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
    recall = tp / n_pos
    dx = np.diff(recall)
    if np.all(dx <= 0):
        return float(-np.trapezoid(precision, recall)) + 0.0  # no "-0.0"
    return float(np.trapezoid(precision, recall))  # pragma: no cover - recall never rises


def bah_metrics(gt: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
    """Official BAH metrics for binary ``gt`` (n,) and class scores ``logits`` (n, 2).

    Returns ``accuracy``, ``f1_pos``, ``f1_neg``, ``avg_f1``, ``w_f1``, ``ap_pos`` (floats)
    and ``confusion`` (2x2 list, rows = truth, normalised per true class).
    """
    gt = np.asarray(gt)
    logits = np.asarray(logits, dtype=np.float64)
    if gt.ndim != 1 or logits.shape != (gt.shape[0], 2) or gt.shape[0] == 0:
        raise ConfigError(f"bah_metrics got gt {gt.shape} and logits {logits.shape}",
                          expected="gt (n,) of 0/1 and logits (n, 2), n > 0")
    if not np.isin(gt, (0, 1)).all():
        raise ConfigError("gt holds values other than 0 and 1", expected="binary labels")
    gt = gt.astype(np.int64)
    pred = np.argmax(logits, axis=1)
    tp = float(np.sum((pred == 1) & (gt == 1)))
    tn = float(np.sum((pred == 0) & (gt == 0)))
    fp = float(np.sum((pred == 1) & (gt == 0)))
    fn = float(np.sum((pred == 0) & (gt == 1)))
    n = gt.shape[0]
    f1_pos, f1_neg = _f1(tp, fp, fn), _f1(tn, fn, fp)
    n_pos, n_neg = tp + fn, tn + fp
    conf = [[tn / n_neg if n_neg else 0.0, fp / n_neg if n_neg else 0.0],
            [fn / n_pos if n_pos else 0.0, tp / n_pos if n_pos else 0.0]]
    return {
        "accuracy": (tp + tn) / n,
        "f1_pos": f1_pos,
        "f1_neg": f1_neg,
        "avg_f1": (f1_pos + f1_neg) / 2,
        "w_f1": (f1_pos * n_pos + f1_neg * n_neg) / n,
        "ap_pos": average_precision(softmax(logits)[:, 1], gt),
        "confusion": conf,
    }


def video_probability(p_pos: np.ndarray, window: int = 24) -> float:
    """The paper's video score: the maximum over 1 s (24-frame) sliding windows of the
    mean positive probability; a video shorter than the window is averaged whole."""
    p = np.asarray(p_pos, dtype=np.float64)
    if p.size == 0:
        raise ConfigError("video has no frames", expected="at least one frame score")
    if p.size <= window:
        return float(p.mean())
    c = np.concatenate([[0.0], np.cumsum(p)])
    return float(((c[window:] - c[:-window]) / window).max())


def video_logits(probabilities: np.ndarray) -> np.ndarray:
    """Two-class scores whose softmax gives back ``probabilities`` (for bah_metrics)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1 - 1e-12)
    return np.stack([np.log1p(-p), np.log(p)], axis=1)
