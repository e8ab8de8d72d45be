"""Ingest speed: `store.ingest.ingest` against its unavoidable floor, in the same run.

The floor is what any ingest must do: parse the annotation YAML (libyaml) and
probe every video once with ffprobe (same thread pool). The ratio says how much
bahfs adds on top (validation, cross-checks, consent, Parquet writes).

    .venv/bin/python -m benchmarks.ingest DATASET [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from store.ingest import ingest
from store.media import probe_video
from store.release import codebook as cb
from store.release.layout import detect_layout
from store.release.yamlio import load_yaml


def floor(dataset: Path) -> float:
    t0 = time.perf_counter()
    anns = load_yaml(detect_layout(dataset).annotations)
    load_yaml(dataset / cb.META_YML)
    with ThreadPoolExecutor(8) as pool:  # the release's video ids are paths from its root
        list(pool.map(probe_video, [dataset / ref for ref in anns]))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    base, full = [], []
    for _ in range(args.repeat):
        base.append(floor(args.dataset))
        store = Path(tempfile.mkdtemp(prefix="bahfs-bench-"))
        t0 = time.perf_counter()
        report = ingest(args.dataset, store)
        full.append(time.perf_counter() - t0)
        shutil.rmtree(store)
    b, f = statistics.median(base), statistics.median(full)
    print(f"videos in release: {len(load_yaml(detect_layout(args.dataset).annotations))}, "
          f"ingested: {report.videos} videos / {report.frames} frames")
    print(f"floor (YAML parse + ffprobe all videos): {b:.2f} s (median of {args.repeat})")
    print(f"bahfs ingest:                            {f:.2f} s (median of {args.repeat})")
    print(f"ratio ingest / floor: {f / b:.2f}x")


if __name__ == "__main__":
    main()
