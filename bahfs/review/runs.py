"""A trained run's view of videos: per-frame A/H probabilities and the video score by
the official rule (the best 24-frame window's mean probability), computed by the
run's model from the store as ``bahfs evaluate`` and ``bahfs predict`` compute them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from store.backend import Store
from store.errors import ConfigError
from training.data import WindowDataset
from training.device import device_errors, model_device
from training.metrics import video_probability
from training.run import load_run, predict_frames

#: the official rule's window (frames)
SCORE_WINDOW = 24


@dataclass(frozen=True)
class RunScores:
    """One video under one run."""

    p: np.ndarray  # (n_frames,) positive-class probability
    score: float  # the official video score
    window: tuple[int, int]  # [first, last) frame of the window that gives the score


def best_window(p: np.ndarray, window: int = SCORE_WINDOW) -> tuple[int, int]:
    """The frames whose mean is the official score (the whole video when shorter)."""
    if p.size <= window:
        return 0, int(p.size)
    c = np.concatenate([[0.0], np.cumsum(p, dtype=np.float64)])
    start = int(np.argmax(c[window:] - c[:-window]))
    return start, start + window


def run_scores(run: Path, store: Store, video_ids: list[str],
               device: str | None = None) -> dict[str, RunScores]:
    """Frame probabilities and scores of ``run`` for those of ``video_ids`` extracted
    into every feature set the run reads (the others are left out), read from
    ``store``."""
    model, cfg, sources = load_run(run, store.location, device)
    try:
        ds = WindowDataset(store, sources, length=cfg.window, hop=cfg.window,
                           video_ids=video_ids, labelled=False, cache_bytes=0)  # read once
    except ConfigError:
        return {}  # none of the videos is in the run's feature sets
    with device_errors(model_device(model)):
        logits = predict_frames(model, ds, [s.modality for s in sources])
    out = {}
    for vid, lg in logits.items():
        p = torch.softmax(torch.from_numpy(lg), 1)[:, 1].numpy()
        out[vid] = RunScores(p, video_probability(p, SCORE_WINDOW), best_window(p))
    return out
