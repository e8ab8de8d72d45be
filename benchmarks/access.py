"""The cost of the store's access policy on the write path, and of checking it.

Writes the same synthetic videos (three feature sets, float16, BAH-sized videos)
through ``store.writer.FeatureWriter`` twice, alternating: as the writer does (the
staged video given the policy's modes in one pass before it is synced and
published, every table and group file chmod-ed before its rename), and with the
policy's chmod/chown calls turned off (syncs on in both). Then, over the store
written: the pass itself (every path put back to the umask's 0644/0755, then
``AccessPolicy.apply_tree``, which chmods each one), and ``store.access.drifting``
(what ``bahfs verify`` adds).

    .venv/bin/python -m benchmarks.access [--videos 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

from benchmarks.sync import write_all
from store.access import DEFAULT, drifting


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    videos = [(f"P{i:04d}__Visite_1__Q1", 642) for i in range(args.videos)]
    timing: dict[bool, list[float]] = {True: [], False: []}
    check: list[float] = []
    passes: list[float] = []
    paths = 0
    for _ in range(args.rounds):
        for policy in (False, True):
            root = Path(tempfile.mkdtemp(prefix="bahfs-access-"))
            if policy:
                timing[True].append(write_all(root / "store", videos, sync=True))
                t0 = time.perf_counter()
                drift = drifting(root / "store")
                check.append(time.perf_counter() - t0)
                if drift:
                    raise SystemExit(f"the writer left paths off the policy: {drift[:3]}")
                every = list((root / "store").rglob("*"))
                paths = len(every)
                for p in every:
                    p.chmod(0o755 if p.is_dir() else 0o644)
                t0 = time.perf_counter()
                DEFAULT.apply_tree(root / "store")
                passes.append(time.perf_counter() - t0)
            else:
                with mock.patch("store.access.AccessPolicy.apply", return_value=False):
                    timing[False].append(write_all(root / "store", videos, sync=True))
            shutil.rmtree(root)
    off, on = statistics.median(timing[False]), statistics.median(timing[True])
    n = args.videos * 3
    print(f"{args.videos} videos x 3 feature sets: without the policy {off:.2f} s, with it "
          f"{on:.2f} s; ratio {on / off:.3f}x (median of {args.rounds}); the pass alone, "
          f"{paths} paths all off the policy: {statistics.median(passes) * 1000:.0f} ms "
          f"({statistics.median(passes) / n * 1e6:.0f} us per video and feature set, "
          f"{statistics.median(passes) / on * 100:.1f} % of the writes); checking them for "
          f"drift: {statistics.median(check) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
