"""Ingest at the real release's size: `bahfs ingest` against the C YAML loader's floor.

Writes (once) a release in the real layout scaled to the full BAH release: 300
participants, about 1,500 videos and 0.99 M frame labels, an annotation YAML of
about 95 MB (the real one is about 91 MB for 916,618 frames). Each video file is
a tiny real H.264 clip with the annotated frame count (one clip per distinct
count, hard-linked), so ingest probes real files. Then, each in a fresh process,
timing wall clock and peak memory (the process's max RSS):

* floor: libyaml (``yaml.CSafeLoader``) parsing the annotation file, nothing else;
* read: ``store.release.read_release`` (variant detection, YAML, validation, the
  frame-label and transcript tables, cross-checks), no video opened;
* probe: ffprobe of every video (the same thread pool ingest uses);
* ingest: ``bahfs ingest RELEASE STORE`` (the CLI, start-up included).

    .venv/bin/python -m benchmarks.ingest_full [--out /tmp/bah-full]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bahfs.sample.generate import SampleConfig, write_annotations
from bahfs.sample.release_files import video_path
from store.release import codebook as cb

CFG = SampleConfig(participants=300, seed=0, max_questions=6, max_seconds=45.0)


def _clip(path: Path, n_frames: int) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=gray:size=32x32:rate=24", "-frames:v", str(n_frames),
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    str(path)], check=True)


def place_clips(by_count: dict[int, list[Path]], clips: Path,
                make_clip: Callable[[Path, int], None],
                place: Callable[[Path, Path], object]) -> None:
    """One clip per frame count, made in parallel in the new folder ``clips`` by
    ``make_clip(path, n_frames)``, then ``place(clip, path)`` for every video path of
    that frame count (its folders made)."""
    clips.mkdir()
    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        list(pool.map(lambda n: make_clip(clips / f"{n}.mp4", n), by_count))
    for n, paths in by_count.items():
        for p in paths:
            p.parent.mkdir(parents=True, exist_ok=True)
            place(clips / f"{n}.mp4", p)


def build(out: Path) -> None:
    """The scaled release: annotations from the generator, tiny clips as videos."""
    if (out / cb.ANNOTATIONS_YAML).is_file():
        return
    jobs = write_annotations(out, CFG)
    by_count: dict[int, list[Path]] = defaultdict(list)
    for job in jobs:
        by_count[job.plan.n_frames].append(out / video_path(job, "release"))
    place_clips(by_count, out / ".clips", _clip, lambda clip, p: p.hardlink_to(clip))


STAGES = {
    "floor": "import yaml,sys; yaml.load(open(sys.argv[1], encoding='utf-8').read(), "
             "Loader=yaml.CSafeLoader)",
    "read": "import sys; from pathlib import Path; from store.release.reader import read_release; "
            "read_release(Path(sys.argv[1]).parent)",
    "probe": "import sys; from pathlib import Path; from concurrent.futures import "
             "ThreadPoolExecutor; from store.media import probe_video; "
             "root = Path(sys.argv[1]).parent; "
             "files = sorted(p for p in (root / 'Videos').rglob('*.mp4')); "
             "list(ThreadPoolExecutor(8).map(probe_video, files))",
}


def run(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "bah-full")
    args = ap.parse_args()
    t0 = time.perf_counter()
    build(args.out)
    ann = args.out / cb.ANNOTATIONS_YAML
    n_videos = sum(1 for _ in (args.out / cb.VIDEOS_DIR).rglob("*.mp4"))
    n_frames = sum(1 for line in (args.out / cb.SPLIT_FRAMES_DIR / "train.txt").open()) + \
        sum(1 for s in ("val", "test")
            for _ in (args.out / cb.SPLIT_FRAMES_DIR / f"{s}.txt").open())
    print(f"release: {args.out} ({time.perf_counter() - t0:.0f} s to build): {n_videos} "
          f"videos, {n_frames:,} frame labels, {ann.stat().st_size / 1e6:.1f} MB "
          f"{ann.name}")
    results = {name: run([sys.executable, "-c", code, str(ann)])
               for name, code in STAGES.items()}
    store = Path(tempfile.mkdtemp(prefix="bahfs-full-store-"))
    bahfs = Path(sys.executable).with_name("bahfs")
    results["ingest"] = run([str(bahfs), "ingest", str(args.out), str(store)])
    shutil.rmtree(store)
    floor = results["floor"][0]
    for name, (wall, rss) in results.items():
        print(f"{name:7s} {wall:7.1f} s  {wall / floor:5.2f}x floor  peak RSS {rss:7.0f} MB")
    own = results["ingest"][0] - results["probe"][0]
    print(f"ingest without the probe: {own:.1f} s ({own / floor:.2f}x floor)")


if __name__ == "__main__":
    main()
