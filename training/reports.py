"""Metrics beside the official ones, each clearly named.

* ``ap_pos_threshold_free``: scikit-learn's ``average_precision_score`` of the
  positive class. The official AP (``ap_pos``, :mod:`training.metrics`) thresholds
  on the grid 0.000 ... 0.999, so a model whose positive probabilities all exceed
  0.999 gets an official AP of 0; this one has no grid.
* Per participant: the official frame-level metrics of each participant's frames,
  and their mean and standard deviation over participants (population std,
  ``ddof=0``), as the paper reports personalisation. A value that is not defined
  for a participant (AP without positive frames) is left out of that metric's mean
  and std, so its ``n`` can be smaller. Participants are keyed by
  their pseudonymous subject hash (:func:`store.consent.subject_hash`, first 16
  hex digits), so a run directory holds no participant id.
* Per demographic group (age range, gender): the official frame-level metrics of
  the group's frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score

from store.consent import subject_hash
from training.metrics import bah_metrics, softmax

SUMMARISED = ("avg_f1", "f1_pos", "f1_neg", "w_f1", "accuracy", "ap_pos",
              "ap_pos_threshold_free")


def threshold_free_ap(gt: np.ndarray, p_pos: np.ndarray) -> float:
    """scikit-learn's average precision of the positive class (NaN without positives)."""
    gt = np.asarray(gt)
    if not (gt == 1).any():
        return float("nan")
    return float(average_precision_score(gt, np.asarray(p_pos, dtype=np.float64)))


def metrics(gt: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
    """The official metrics of ``bah_metrics`` plus ``ap_pos_threshold_free``."""
    out = bah_metrics(gt, logits)
    out["ap_pos_threshold_free"] = threshold_free_ap(gt, softmax(np.asarray(logits))[:, 1])
    return out


def mean_std(values: list[float]) -> dict[str, float | int]:
    v = np.array([x for x in values if np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std()), "n": int(v.size)}


def grouped(gt: dict[str, np.ndarray], logits: dict[str, np.ndarray],
            group_of: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Frame-level metrics per group, ``group_of`` mapping each video to its group."""
    out: dict[str, dict[str, Any]] = {}
    for group in sorted(set(group_of.values())):
        vids = sorted(v for v, g in group_of.items() if g == group)
        g = np.concatenate([gt[v] for v in vids])
        m = metrics(g, np.concatenate([logits[v] for v in vids]))
        out[group] = {**m, "frames": int(g.size), "videos": len(vids)}
    return out


def per_participant(gt: dict[str, np.ndarray], logits: dict[str, np.ndarray],
                    participant_of: dict[str, str]) -> dict[str, Any]:
    """Each participant's frame-level metrics, and their mean and std over participants."""
    each = grouped(gt, logits, {v: subject_hash(p)[:16] for v, p in participant_of.items()})
    summary = {k: mean_std([m[k] for m in each.values()]) for k in SUMMARISED}
    return {"participants": each, "summary": summary}
