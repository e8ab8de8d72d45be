"""Soak: does memory or the number of open files grow over a long run?

1. Extraction: a few hundred very short tiny videos (ffmpeg: 0.5 s, 64x48, a tone),
   extracted one after another in this one process as a Dask worker does (the
   shared extractors, one ``FeatureWriter`` per video, every video published into a
   store); RSS and open fds at the start, after a warm-up, every 100 videos, and at
   the end.
2. Training reader: ``training.data.WindowDataset`` over a store made from a
   generated release (ingest + logmel), a torch ``DataLoader`` with 4 workers
   iterating many epochs; open fds and RSS (main process, and all processes) per
   epoch.

Prints figures and ratios; asserts nothing.

    .venv/bin/python -m benchmarks.soak --videos 300 --epochs 20
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def fds(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def children() -> list[int]:
    me = os.getpid()
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text[text.rindex(")") + 2:].split()[1]) == me:
            out.append(int(stat.parent.name))
    return out


def make_videos(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    one = folder / "v0000.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=24:duration=0.5", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=0.5", "-c:v", "libx264", "-c:a", "aac",
                    "-shortest", str(one)], check=True)
    paths = [one]
    for i in range(1, n):  # copies: the same bytes, each its own file and video id
        p = folder / f"v{i:04d}.mp4"
        p.write_bytes(one.read_bytes())
        paths.append(p)
    return paths


def soak_extract(tmp: Path, n: int, names: tuple[str, ...]) -> None:
    from extractors.context import CONTEXTS
    from extractors.pipeline import extract_all
    from extractors.plan import plan_from_names
    from extractors.runtime import Runtime, threads_per_process
    from store.writer import FeatureWriter

    videos = make_videos(tmp / "videos", n)
    store = tmp / "store"
    print(f"extraction: {n} videos of 0.5 s at 64x48, extractors {','.join(names)}, "
          "one process")
    start = (rss_mb(), fds())
    print(f"  start:            RSS {start[0]:7.1f} MB  fds {start[1]}")
    warm = start
    t0 = time.perf_counter()
    for i, path in enumerate(videos, 1):
        runtime = Runtime(threads=threads_per_process() or 1)
        with CONTEXTS.use(plan_from_names(names), runtime) as context:
            for f in extract_all(path, list(context.extractors), video_id=path.stem,
                                 participant_id="p1"):
                FeatureWriter(store).write(f)
        if i == min(20, n):
            warm = (rss_mb(), fds())
            print(f"  after {i:3d} (warm): RSS {warm[0]:7.1f} MB  fds {warm[1]}")
        elif i % 100 == 0 or i == n:
            print(f"  after {i:4d}:       RSS {rss_mb():7.1f} MB  fds {fds()}")
    end = (rss_mb(), fds())
    print(f"  {n / (time.perf_counter() - t0):.1f} videos/s; end vs warm: RSS "
          f"{end[0] / warm[0]:.3f}x ({end[0] - warm[0]:+.1f} MB), fds {end[1] - warm[1]:+d}")


def soak_training(tmp: Path, epochs: int, workers: int) -> None:
    from torch.utils.data import DataLoader

    from bahfs.sample.generate import SampleConfig, generate
    from flows.engine import extract_release
    from store.ingest import ingest
    from training.data import WindowDataset, collate, resolve_sources

    release, store = tmp / "release", tmp / "train-store"
    generate(release, SampleConfig(participants=4, seed=3, max_questions=2,
                                   max_seconds=14.0, workers=2))
    ingest(release, store, workers=2)
    extract_release(store, ("logmel",))
    ds = WindowDataset(store, resolve_sources(store, ["logmel"]), length=16, hop=4)
    loader = DataLoader(ds, batch_size=8, shuffle=True, num_workers=workers,
                        collate_fn=collate, persistent_workers=False)
    print(f"training reader: {len(ds)} windows of 16 frames, DataLoader num_workers="
          f"{workers}, {epochs} epochs (workers restarted every epoch)")
    first = (0.0, 0)
    for epoch in range(1, epochs + 1):
        batches = 0
        peak_all = 0.0
        for _ in loader:
            batches += 1
            if batches == 1:
                peak_all = rss_mb() + sum(rss_mb(c) for c in children())
        now = (rss_mb(), fds())
        first = now if epoch == 1 else first
        print(f"  epoch {epoch:3d}: {batches} batches  main RSS {now[0]:7.1f} MB  "
              f"fds {now[1]}  (main + workers during the epoch {peak_all:7.1f} MB)")
    end = (rss_mb(), fds())
    print(f"  last vs first epoch: main RSS {end[0] / first[0]:.3f}x "
          f"({end[0] - first[0]:+.1f} MB), fds {end[1] - first[1]:+d}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=300)
    ap.add_argument("--extractors", default="logmel")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--workers", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bahfs-soak-") as tmp:
        soak_extract(Path(tmp), args.videos, tuple(args.extractors.split(",")))
        soak_training(Path(tmp), args.epochs, args.workers)


if __name__ == "__main__":
    main()
