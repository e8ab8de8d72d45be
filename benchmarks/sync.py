"""The cost of syncing each video to disk before it is published.

Writes the same synthetic videos (three feature sets, float16, BAH-sized videos)
through ``store.writer.FeatureWriter`` twice, alternating: as the writer does
(every file and folder fsynced before the publishing rename, the rename synced),
and with the syncs turned off (the writer before they were added). The ratio is
the figure to watch; the syncs are what makes a publish survive a power loss.

    .venv/bin/python -m benchmarks.sync [--videos 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

from benchmarks.store import specs
from store.features import VideoFeatures
from store.writer import FeatureWriter


def write_all(root: Path, videos: list[tuple[str, int]], sync: bool) -> float:
    rng = np.random.default_rng(0)
    feats = [VideoFeatures(spec, vid, vid.split("__")[0], np.arange(n) / 24.0,
                           {"embedding": rng.standard_normal((n, spec.arrays[0].shape[0]))
                            .astype(np.float16)})
             for vid, n in videos for spec in specs().values()]
    writer = FeatureWriter(root)
    t0 = time.perf_counter()
    if sync:
        for f in feats:
            writer.write(f)
    else:
        with mock.patch("store.local.sync_tree"), mock.patch("store.local.sync_dir"):
            for f in feats:
                writer.write(f)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    videos = [(f"P{i:04d}__Visite_1__Q1", 642) for i in range(args.videos)]
    mb = sum(n for _, n in videos) * sum(s.arrays[0].shape[0] for s in specs().values()) * 2e-6
    timing: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.rounds):
        for sync in (False, True):
            root = Path(tempfile.mkdtemp(prefix="bahfs-sync-"))
            timing[sync].append(write_all(root / "store", videos, sync))
            shutil.rmtree(root)
    off, on = statistics.median(timing[False]), statistics.median(timing[True])
    print(f"{args.videos} videos x 3 feature sets, {mb:.0f} MB: without syncs {off:.2f} s "
          f"({mb / off:.0f} MB/s), with syncs {on:.2f} s ({mb / on:.0f} MB/s); "
          f"ratio {on / off:.2f}x (median of {args.rounds})")


if __name__ == "__main__":
    main()
