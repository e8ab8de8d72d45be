"""``bahfs status`` on a store the size of the real release.

    .venv/bin/python -m benchmarks.status [--dir /tmp/bah-status] [--videos 1427]

Builds (once, in ``--dir``) a synthetic store with the release's counts: 300
participants, 1,427 videos, about 916k frames (``benchmarks.synthetic`` tables), and
the default extraction's four feature sets with their arrays (face 5, logmel 4,
audio 2, words 3: the same number of files and folders as a real store; zeros, the
content does not matter to status), every video extracted but a few pending,
quarantined or hit by a bug, and three extract runs. Then times ``store_status``
in this process (median of 5) and ``bahfs status STORE`` as a user runs it (a
fresh process: Python start-up and imports included, median of 3), page cache warm.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.synthetic import SyntheticConfig, make_synthetic_store
from store.catalog import refresh_catalog
from store.features import ArraySpec, FeatureSetSpec, VideoFeatures
from store.schema import INGEST_TABLES, empty
from store.tables import read_table, table_exists, write_table
from store.writer import FeatureWriter

#: the default extraction's feature sets, their arrays as the extractors declare them
SETS = {
    "face": [("embedding", "float16", (512,)), ("emotions", "float32", (7,)),
             ("has_face", "bool", ()), ("box", "float32", (4,)),
             ("landmarks", "float32", (10,))],
    "logmel": [("logmel", "float16", (64,)), ("energy_db", "float32", ()),
               ("voiced", "bool", ()), ("has_audio", "bool", ())],
    "audio": [("embedding", "float16", (512,)), ("has_audio", "bool", ())],
    "words": [("word_embedding", "float16", (384,)), ("has_word", "bool", ()),
              ("word_index", "int32", ())],
}


def _trim(store: Path, n_videos: int) -> pl.DataFrame:
    videos = read_table(store, "videos").head(n_videos)
    keep = pl.col("video_id").is_in(videos["video_id"].to_list())
    write_table(store, "videos", videos)
    write_table(store, "frame_labels", read_table(store, "frame_labels").filter(keep))
    for name in INGEST_TABLES:
        if not table_exists(store, name):
            write_table(store, name, empty(name))
    return videos


def _runs_and_faults(store: Path, videos: pl.DataFrame) -> None:
    q, b = videos.row(0, named=True), videos.row(1, named=True)
    write_table(store, "quarantine", pl.DataFrame([{
        "video_id": q["video_id"], "participant_id": q["participant_id"], "path": q["path"],
        "stage": "extract", "reason": "undecodable", "kind": "decode",
        "quarantined_at": "2026-12-01T10:00:00+00:00"}], schema=empty("quarantine").schema))
    write_table(store, "bugs", pl.DataFrame([{
        "video_id": b["video_id"], "participant_id": b["participant_id"], "run_id": "r2",
        "at": "2026-12-01T10:00:00", "error": "KeyError", "traceback": "..."}],
        schema=empty("bugs").schema))
    write_table(store, "extract_runs", pl.DataFrame([{
        "run_id": f"r{i}", "started_at": f"2026-12-0{i}T09:00:00+00:00",
        "finished_at": f"2026-12-0{i}T11:30:00+00:00", "feature_sets": json.dumps(list(SETS)),
        "batches": 1, "extracted": 475, "skipped": 0, "busy": 0, "quarantined": i == 2,
        "frames": 300_000, "detail": json.dumps({"halted": ""})} for i in (1, 2, 3)],
        schema=empty("extract_runs").schema))


def build(store: Path, n_videos: int) -> None:
    make_synthetic_store(store, SyntheticConfig(participants=300, videos_per_participant=5,
                                                mean_frames=642, dims=()))
    videos = _trim(store, n_videos)
    writer = FeatureWriter(store)
    for name, arrays in SETS.items():
        spec = FeatureSetSpec(name, {"bench": "status"}, "7" * 64,
                              tuple(ArraySpec(a, d, s) for a, d, s in arrays))
        rows = videos.select("video_id", "participant_id", "n_frames").iter_rows()
        for i, (vid, pid, n) in enumerate(rows):
            if i < 3:  # pending, quarantined and hit by a bug in every feature set
                continue
            writer.write(VideoFeatures(spec, vid, pid, np.arange(n) / 24.0, {
                a: np.zeros((n, *s), d) for a, d, s in arrays}))
    _runs_and_faults(store, videos)
    refresh_catalog(store)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", type=Path, default=Path("/tmp/bah-status"))
    ap.add_argument("--videos", type=int, default=1427)
    args = ap.parse_args()
    store = args.dir / "store"
    if not (store / "tables" / "extracted.parquet").is_file():
        t0 = time.perf_counter()
        build(store, args.videos)
        print(f"built {store} in {time.perf_counter() - t0:.0f} s")
    from store.status import store_status

    calls = []
    for _ in range(5):
        t0 = time.perf_counter()
        found = store_status(store)
        calls.append(time.perf_counter() - t0)
    files = sum(1 for _ in store.rglob("*"))
    print(f"{found.videos['consented']} videos, {files:,} paths, "
          f"{found.size_bytes / 1e9:.2f} GB; store_status: median "
          f"{statistics.median(calls):.3f} s")
    bahfs = str(Path(sys.executable).with_name("bahfs"))
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([bahfs, "status", str(store)], check=True, capture_output=True)
        runs.append(time.perf_counter() - t0)
    print(f"bahfs status (fresh process): median {statistics.median(runs):.2f} s")


if __name__ == "__main__":
    main()
