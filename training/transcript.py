"""A transcript baseline: one vector per video from its words, logistic regression.

Challenge entrants found text the strongest modality; this is the simple, fast
video-level classifier on the store's word features. Each video's transcript
vector is the mean of its words' vectors (each word once, from ``word_index``;
without that array, the mean over the frames where ``has_word`` is true, else
over every frame). A scikit-learn logistic regression (balanced classes,
standardised inputs) is trained on the train split and evaluated on val and test
with the official metrics: at video level on its probability, and at frame level
with every frame given its video's probability, so that it reads beside the
frame-level baselines (the per-participant and per-group reports come along).
The run directory also holds ``submission_<split>.csv``, the challenge's format
(:mod:`training.predict`), for every extracted video of val and test, including
those whose labels the release withholds (videos not extracted are named in the
log and left out).
"""

from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from store.access import new_dir
from store.backend import Store
from store.errors import ConfigError
from store.local import as_store
from store.reader import FeatureReader
from training.data import Source, WindowDataset, resolve_sources
from training.metrics import video_logits
from training.predict import release_order, write_submission


@lru_cache(maxsize=16)
def _array_names(reader: FeatureReader, feature_set: str) -> frozenset[str]:
    return frozenset(a.name for a in reader.featuresets()[feature_set].arrays)


def transcript_vector(reader: FeatureReader, source: Source, video_id: str) -> np.ndarray:
    """The mean of a video's word vectors, each word counted once (zeros without words)."""
    n = reader.n_frames(video_id)
    emb = reader.read_rows(source.feature_set, video_id, source.array, 0, n).astype(np.float64)
    names = _array_names(reader, source.feature_set)
    if "word_index" in names:
        index = reader.read_rows(source.feature_set, video_id, "word_index", 0, n)
        _, first = np.unique(index, return_index=True)
        rows = first[index[first] >= 0]
    elif "has_word" in names:
        rows = np.flatnonzero(reader.read_rows(source.feature_set, video_id, "has_word", 0, n))
    else:
        rows = np.arange(n)
    out: np.ndarray = emb[rows].mean(axis=0) if rows.size else np.zeros(emb.shape[1])
    return out


def _split(store: Store, source: Source, split: str, labelled: bool = True) -> WindowDataset:
    # one window per video is enough: the dataset is used for its videos and labels
    return WindowDataset(store, [source], length=1 << 30, hop=1 << 30, split=split,
                         labelled=labelled)


def train_transcript(location: Store | Path, words: str = "words", *, c: float = 1.0,
                     seed: int = 0, out: Path = Path("runs"), log: Any = print) -> Path:
    """Train on the train split, evaluate val and test; return the run directory."""
    from training.run import evaluate_predictions

    store = as_store(location)
    (source,) = resolve_sources(store, [words])
    reader = FeatureReader(store)
    train = _split(store, source, "train")
    vids = train.videos["video_id"].to_list()
    x = np.stack([transcript_vector(reader, source, v) for v in vids])
    y = train.videos["global_label"].to_numpy()
    if len(set(y.tolist())) < 2:
        raise ConfigError("the train split needs videos of both classes",
                          expected="A/H and A/H-free training videos")
    model = make_pipeline(StandardScaler(), LogisticRegression(
        C=c, class_weight="balanced", max_iter=2000, random_state=seed))
    model.fit(x, y)
    log(f"transcript baseline: {len(vids)} training videos, {x.shape[1]}-d vectors")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    run = Path(out) / f"{stamp}-transcript-{source.modality}-s{seed}"
    access = store.access  # the run holds what the store holds: same modes
    new_dir(run, access)
    config = {"store": store.location, "model": "transcript", "modalities": [words], "C": c,
              "seed": seed}
    results: dict[str, Any] = {
        "config": config,
        "feature_sets": {source.modality: {"feature_set": source.feature_set,
                                           "array": source.array,
                                           "model_sha256": source.model_sha256}},
        "train_videos": len(vids), "splits": {}}
    for split in ("val", "test"):
        try:
            every = _split(store, source, split, labelled=False)
        except ConfigError as exc:
            results["splits"][split] = {"error": exc.message}
            continue
        ids = every.videos["video_id"].to_list()
        left = as_store(store).read_table("videos").filter(
            (pl.col("split") == split) & ~pl.col("video_id").is_in(ids))["video_id"]
        if left.len():
            log(f"{split}: {left.len()} videos not extracted into {source.feature_set}, "
                f"left out of submission_{split}.csv, e.g. {left[0]}")
        p = dict(zip(ids, model.predict_proba(np.stack(
            [transcript_vector(reader, source, v) for v in ids]))[:, 1].tolist(), strict=True))
        write_submission(run / f"submission_{split}.csv", release_order(store, p))
        try:
            ds = _split(store, source, split)
        except ConfigError as exc:  # every label of the split withheld
            results["splits"][split] = {"error": exc.message}
            continue
        n = dict(ds.videos.select("video_id", "n_frames").iter_rows())
        logits = {v: np.repeat(video_logits(np.array([p[v]])), n[v], axis=0) for v in n}
        results["splits"][split] = evaluate_predictions(ds, logits)
    (run / "config.json").write_text(json.dumps(config, indent=2))
    (run / "results.json").write_text(json.dumps(results, indent=2))
    access.apply_tree(run)
    return run
