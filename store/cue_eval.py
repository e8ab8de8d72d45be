"""Which behaviour array carries which annotated cue: per cue of the ``cues`` table,
the AUC of every array column separating the frames inside segments coded with that
cue from the other frames of the same videos.

A feature set's arrays are read from the store (:class:`store.reader.FeatureReader`).
The feature set's provenance may say, per array, its column names (``columns``), the
mask that tells where it is measured (``masks``: the AUC then uses only frames where
the mask is true; a mask itself is scored on every frame) and whether it is a signed
angle or offset (``signed``: its magnitude ``|x|`` is scored too, for cues that go
either way, such as looking away to the left or the right). The ``behaviour``
extractor records all three.

AUC is the Mann-Whitney probability that a frame in a cue segment has a larger value
than a frame outside (ties count one half): 0.5 is no separation, 1 or 0 is perfect.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from store.backend import Store
from store.errors import NotFoundError
from store.local import as_store
from store.reader import FeatureReader


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for boolean ``positive`` (average ranks
    for ties); NaN without both classes."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(scores.size, np.float64)
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], scores.size]
    avg = (starts + ends + 1) / 2.0  # 1-based average rank of each run of ties
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def cue_segments(store: Store | Path, min_segments: int) -> pl.DataFrame:
    """Per (modality, cue) coded in at least ``min_segments`` segments: its segments'
    video and frame range."""
    segs = as_store(store).read_table("segments").select("video_id", "segment", "start_frame",
                                                 "end_frame")
    cues = (as_store(store).read_table("cues").filter(pl.col("modality") != "inconsistency")
            .unique(["video_id", "segment", "modality", "cue"]))
    joined = cues.join(segs, on=["video_id", "segment"])
    counts = joined.group_by("modality", "cue").agg(pl.len().alias("segments"))
    keep = counts.filter(pl.col("segments") >= min_segments)
    return joined.join(keep, on=["modality", "cue"]).sort("modality", "cue", "video_id")


def _columns(name: str, arr: np.ndarray, extra: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
    flat = arr.reshape(arr.shape[0], -1).astype(np.float64)
    names = extra.get("columns", {}).get(name) or [str(i) for i in range(flat.shape[1])]
    if len(names) != flat.shape[1]:
        names = [str(i) for i in range(flat.shape[1])]
    cols = [(name if flat.shape[1] == 1 else f"{name}.{c}", flat[:, i])
            for i, c in enumerate(names)]
    if name in extra.get("signed", []):
        cols += [(f"|{label}|", np.abs(v)) for label, v in cols]
    return cols


def evaluate_cues(store: Store | Path, feature_set: str = "behaviour", min_segments: int = 5,
                  max_width: int | None = None) -> pl.DataFrame:
    """One row per (cue, array column): modality, cue, segments, videos, pos_frames,
    neg_frames (frames scored), feature, auc and separation ``|auc - 0.5|``, sorted by
    cue and separation. Every column of every array is scored, unless ``max_width``
    is given: then arrays wider than that many columns (a stored mesh) are left out."""
    store = as_store(store)
    reader = FeatureReader(store)
    fs_id = reader.resolve(feature_set)
    spec = reader.featuresets()[fs_id]
    masks: dict[str, str] = spec.extra.get("masks", {})
    done = set(reader.extracted(fs_id))
    segs = cue_segments(store, min_segments).filter(pl.col("video_id").is_in(sorted(done)))
    if segs.is_empty():
        raise NotFoundError(f"no cue has {min_segments} or more segments in videos of "
                            f"feature set {fs_id}", path=store.location,
                            expected="extracted videos with coded cues (a lower "
                                     "--min-segments?)")
    names = [a.name for a in spec.arrays
             if max_width is None or int(np.prod(a.shape or (1,))) <= max_width]
    cache: dict[str, dict[str, np.ndarray]] = {}
    rows: list[dict[str, Any]] = []
    for (modality, cue), group in segs.group_by(["modality", "cue"], maintain_order=True):
        videos = sorted(set(group["video_id"].to_list()))
        per_video = []
        for vid in videos:
            if vid not in cache:
                cache[vid] = reader.video(fs_id, vid, names)
            n = len(next(iter(cache[vid].values())))
            inside = np.zeros(n, bool)
            for s, e in group.filter(pl.col("video_id") == vid).select(
                    "start_frame", "end_frame").iter_rows():
                inside[max(s, 0):min(e + 1, n)] = True
            per_video.append((cache[vid], inside))
        label = np.concatenate([p[1] for p in per_video])
        for name in names:
            arr = np.concatenate([p[0][name] for p in per_video])
            mask_name = masks.get(name)
            where = np.concatenate([p[0][mask_name] for p in per_video]).astype(bool) \
                if mask_name else np.ones(len(arr), bool)
            for feature, values in _columns(name, arr, spec.extra):
                pos = label & where
                a = auc(values[where], label[where])
                rows.append({"modality": modality, "cue": cue,
                             "segments": group.height, "videos": len(videos),
                             "pos_frames": int(pos.sum()),
                             "neg_frames": int((~label & where).sum()),
                             "feature": feature, "auc": round(a, 3)})
    out = pl.DataFrame(rows).with_columns((pl.col("auc") - 0.5).abs().round(3)
                                          .alias("separation"))
    return out.sort(["modality", "cue", "separation"], descending=[False, False, True],
                    nulls_last=True)


def top_features(table: pl.DataFrame, k: int = 3) -> pl.DataFrame:
    """The ``k`` best-separating features of each cue (rows of :func:`evaluate_cues`)."""
    return (table.drop_nulls("auc")
            .with_columns(pl.int_range(pl.len()).over("modality", "cue").alias("rank") + 1)
            .filter(pl.col("rank") <= k)
            .select("modality", "cue", "segments", "videos", "rank", "feature", "auc",
                    "pos_frames", "neg_frames"))


def plot_cue_auc(table: pl.DataFrame, out: Path) -> Path:
    """A heat map, cues by features, of the AUC; written to ``out`` (PNG)."""
    cues = table.select("modality", "cue").unique(maintain_order=True).rows()
    feats = table["feature"].unique(maintain_order=True).to_list()
    mat = np.full((len(cues), len(feats)), np.nan)
    index = {(m, c): i for i, (m, c) in enumerate(cues)}
    fpos = {f: j for j, f in enumerate(feats)}
    for m, c, f, a in table.select("modality", "cue", "feature", "auc").iter_rows():
        mat[index[(m, c)], fpos[f]] = np.nan if a is None else a
    fig, ax = plt.subplots(figsize=(max(6, 0.32 * len(feats) + 2), max(3, 0.4 * len(cues) + 2)))
    im = ax.imshow(mat, cmap="coolwarm", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(feats)), feats, rotation=90, fontsize=7)
    ax.set_yticks(range(len(cues)), [f"{c} ({m})" for m, c in cues], fontsize=8)
    fig.colorbar(im, ax=ax, label="AUC (frames in cue segments vs other frames)")
    ax.set_title("Which behaviour feature carries which cue")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
