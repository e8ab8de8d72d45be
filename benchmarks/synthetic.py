"""Synthetic stores: tables and feature arrays with a planted A/H signal, no video.

For tests of the training layer and for benchmarks at BAH scale. Labels come in
segments (like real A/H), splits are by participant, and A/H frames of the
``signal_modalities`` carry a mean shift of ``shift`` on their first dimensions,
so a model that learns anything reaches AP far above the positive rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from store.features import ArraySpec, FeatureSetSpec, VideoFeatures
from store.tables import write_table
from store.writer import FeatureWriter


@dataclass(frozen=True)
class SyntheticConfig:
    participants: int = 30
    videos_per_participant: int = 5
    mean_frames: int = 640
    dims: tuple[tuple[str, int], ...] = (("face", 512), ("audio", 128), ("words", 384))
    signal_modalities: tuple[str, ...] = ("face",)
    shift: float = 1.0
    signal_dims: int = 8
    positive_rate: float = 0.17
    seed: int = 0
    # splits whose participants show the signal reversed (A/H frames shifted down, not
    # up): a domain shift that only adapting to the participant can undo
    reversed_splits: tuple[str, ...] = ()


def synthetic_spec(modality: str, dim: int) -> FeatureSetSpec:
    return FeatureSetSpec(modality, {"synthetic": True}, "5" * 64,
                          (ArraySpec("embedding", "float16", (dim,), "synthetic feature"),))


def _labels(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    lab = np.zeros(n, np.int8)
    if rng.random() < 0.45:  # about half the videos hold no A/H
        return lab
    target = rate / 0.55 * n
    while lab.sum() < target:
        length = int(rng.integers(24, 150))
        start = int(rng.integers(0, max(1, n - length)))
        lab[start:start + length] = 1
    return lab


def make_synthetic_store(store: Path, cfg: SyntheticConfig) -> dict[str, str]:
    """Write tables and features to ``store``; return modality -> feature set id."""
    rng = np.random.default_rng(cfg.seed)
    pids = [f"S{i:04d}" for i in range(cfg.participants)]
    order = rng.permutation(cfg.participants)
    n_test, n_val = round(cfg.participants * 0.25), max(1, round(cfg.participants * 0.1))
    split = {pids[j]: "test" if k < n_test else "val" if k < n_test + n_val else "train"
             for k, j in enumerate(order)}
    videos, frames = [], []
    for pid in pids:
        for q in range(1, cfg.videos_per_participant + 1):
            n = int(max(72, rng.gamma(2.0, cfg.mean_frames / 2.0)))
            lab = _labels(rng, n, cfg.positive_rate)
            vid = f"{pid}__Visite_1__Q{q}"
            videos.append({"video_id": vid, "participant_id": pid, "visit": "Visite_1",
                           "question": q, "release_id": f"Videos/{pid}/Visite_1/{vid}.mp4",
                           "path": f"Videos/{pid}/Visite_1/{vid}.mp4", "source": "",
                           "duration_s": n / 24.0, "fps": 24.0, "n_frames": n,
                           "has_audio": True, "global_label": int(lab.any()),
                           "split": split[pid], "annotator_id": "synthetic",
                           "transcript": ""})
            frames.append((vid, pid, lab))
    write_table(store, "videos", pl.DataFrame(videos))
    write_table(store, "participants", pl.DataFrame([{
        "participant_id": p, "age": 30, "age_range": "25-34", "birth_country": "Canada",
        "province": "Quebec", "ethnicity": "", "ethnicity_simplified": "", "gender": "",
        "is_student": False, "consent_challenges": True, "consent_publications": True,
        "split": split[p]} for p in pids]))
    write_table(store, "frame_labels", pl.DataFrame({
        "video_id": np.concatenate([np.full(len(lab), v, dtype=object) for v, _, lab in frames]),
        "participant_id": np.concatenate([np.full(len(lab), p, dtype=object)
                                          for _, p, lab in frames]),
        "frame": np.concatenate([np.arange(len(lab)) for _, _, lab in frames]),
        "label": np.concatenate([lab for _, _, lab in frames]),
        "split": np.concatenate([np.full(len(lab), split[p], dtype=object)
                                 for _, p, lab in frames])}))
    writer = FeatureWriter(store)
    ids = {}
    for modality, dim in cfg.dims:
        spec = synthetic_spec(modality, dim)
        ids[modality] = spec.id
        for vid, pid, lab in frames:
            x = rng.standard_normal((len(lab), dim), np.float32)
            if modality in cfg.signal_modalities:
                sign = -1.0 if split[pid] in cfg.reversed_splits else 1.0
                x[:, : cfg.signal_dims] += sign * cfg.shift * lab[:, None]
            writer.write(VideoFeatures(spec, vid, pid, np.arange(len(lab)) / 24.0,
                                       {"embedding": x.astype(np.float16)}))
    return ids
