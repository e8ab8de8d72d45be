"""The feature-set, extracted-video and transcribed-word tables, derived from the Zarr
hierarchy.

The hierarchy is the single source of truth (a video exists once its group is
published), so these tables can never disagree with it: they are snapshots,
refreshed by :func:`refresh_catalog` (after every extraction run and by verify).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from store.asr_words import asr_words_table
from store.layout import features_root, published_videos, read_attrs
from store.schema import empty
from store.tables import write_table


def extracted_table(store: Path) -> pl.DataFrame:
    """One row per (feature set, video) present in the store."""
    root = features_root(store)
    rows = []
    if root.is_dir():
        for fs in sorted(d for d in root.iterdir() if (d / "zarr.json").is_file()):
            for vdir in published_videos(store, fs.name):
                a = read_attrs(vdir)
                rows.append({"feature_set": fs.name, "video_id": vdir.name,
                             "participant_id": vdir.parent.name, "n_frames": a.get("n_frames"),
                             "written_at": a.get("written_at"), "device": a.get("device")})
    return pl.DataFrame(rows, schema=empty("extracted").schema)


def featuresets_table(store: Path, extracted: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per feature set: provenance, videos and frame rows stored."""
    extracted = extracted_table(store) if extracted is None else extracted
    counts = {r[0]: (r[1], r[2]) for r in extracted.group_by("feature_set").agg(
        pl.len(), pl.col("n_frames").cast(pl.Int64).sum()).iter_rows()}
    rows = []
    root = features_root(store)
    for fs in sorted(d for d in root.iterdir() if (d / "zarr.json").is_file()) \
            if root.is_dir() else []:
        a = read_attrs(fs)
        n_videos, n_rows = counts.get(fs.name, (0, 0))
        rows.append({"feature_set": fs.name, "extractor": a.get("extractor"),
                     "model_sha256": a.get("model_sha256"),
                     "config": json.dumps(a.get("config"), sort_keys=True),
                     "arrays": json.dumps(a.get("arrays")), "created": a.get("created"),
                     "videos": n_videos, "rows": n_rows})
    return pl.DataFrame(rows, schema=empty("featuresets").schema)


def refresh_catalog(store: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rewrite ``featuresets``, ``extracted`` and ``asr_words`` from the hierarchy;
    return the first two."""
    ext = extracted_table(store)
    fsets = featuresets_table(store, ext)
    write_table(store, "extracted", ext)
    write_table(store, "featuresets", fsets)
    write_table(store, "asr_words", asr_words_table(store))
    return fsets, ext


def devices(extracted: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Per feature set, how many of its videos each device produced (``unknown``: stored
    before devices were recorded)."""
    counts = extracted.group_by("feature_set", "device").len().sort("feature_set", "device")
    out: dict[str, dict[str, int]] = {}
    for fs, device, n in counts.iter_rows():
        out.setdefault(fs, {})[device or "unknown"] = n
    return out
