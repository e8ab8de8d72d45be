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
from store.backend import Store
from store.local import as_store
from store.schema import empty


def extracted_table(store: Store | Path) -> pl.DataFrame:
    """One row per (feature set, video) present in the store."""
    st = as_store(store)
    rows = []
    for ref in st.all_videos():
        a = st.video_attrs(ref)
        rows.append({"feature_set": ref.feature_set, "video_id": ref.video_id,
                     "participant_id": ref.participant_id, "n_frames": a.get("n_frames"),
                     "written_at": a.get("written_at"), "device": a.get("device")})
    return pl.DataFrame(rows, schema=empty("extracted").schema)


def featuresets_table(store: Store | Path, extracted: pl.DataFrame | None = None
                      ) -> pl.DataFrame:
    """One row per feature set: provenance, videos and frame rows stored."""
    st = as_store(store)
    extracted = extracted_table(st) if extracted is None else extracted
    counts = {r[0]: (r[1], r[2]) for r in extracted.group_by("feature_set").agg(
        pl.len(), pl.col("n_frames").cast(pl.Int64).sum()).iter_rows()}
    rows = []
    for fs in st.feature_set_ids():
        a = st.feature_set_attrs(fs)
        n_videos, n_rows = counts.get(fs, (0, 0))
        rows.append({"feature_set": fs, "extractor": a.get("extractor"),
                     "model_sha256": a.get("model_sha256"),
                     "config": json.dumps(a.get("config"), sort_keys=True),
                     "arrays": json.dumps(a.get("arrays")), "created": a.get("created"),
                     "videos": n_videos, "rows": n_rows})
    return pl.DataFrame(rows, schema=empty("featuresets").schema)


def refresh_catalog(store: Store | Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rewrite ``featuresets``, ``extracted`` and ``asr_words`` from the hierarchy;
    return the first two."""
    st = as_store(store)
    ext = extracted_table(st)
    fsets = featuresets_table(st, ext)
    st.write_table("extracted", ext)
    st.write_table("featuresets", fsets)
    st.write_table("asr_words", asr_words_table(st))
    return fsets, ext


def devices(extracted: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Per feature set, how many of its videos each device produced (``unknown``: stored
    before devices were recorded)."""
    counts = extracted.group_by("feature_set", "device").len().sort("feature_set", "device")
    out: dict[str, dict[str, int]] = {}
    for fs, device, n in counts.iter_rows():
        out.setdefault(fs, {})[device or "unknown"] = n
    return out
