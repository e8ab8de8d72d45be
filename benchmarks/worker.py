"""A worker process with several videos in flight: model-call batch occupancy and the
fraction of wall time the model thread waits, one video in flight against several,
on the same videos in the same run.

    .venv/bin/python -m benchmarks.worker [--in-flight 1,2,4] [--participants 3]
        [--extractors face,logmel] [--device cpu] [--max-rows 64] [--videos DIR]

Each row runs every video once, ``N`` at a time in threads of one process (as a Dask
worker with ``videos_per_worker=N`` does), the extractors built once and shared, their
ONNX Runtime calls gathered by the model thread (:mod:`extractors.batching`, at most
``--max-rows`` rows a call, the same for every row so that occupancies compare). The
first row, ``today``, is the code without a model thread (each video calls its
sessions itself), one video at a time. Printed per row: wall time, frames per second,
model calls, rows and requests per call, occupancy (rows per call / max rows), the model thread's
idle fraction (wall time outside model calls), and ratios against ``N=1`` with the
model thread. Every row's features are compared with ``today``'s: the largest
absolute difference of any array is printed (0 where identical).

Videos: generated ones (``bahfs.sample``, 320x240, about 10 s, with speech), or every
``*.mp4`` under ``--videos`` (the GPU script carries pre-generated ones).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from extractors.context import WorkerContext
from extractors.pipeline import extract_all
from extractors.plan import plan_from_names
from extractors.runtime import Runtime
from store.devices import parse_device
from store.features import VideoFeatures


def sample_videos(root: Path, participants: int) -> list[Path]:
    """Generated videos of the sample release (``bahfs.sample``)."""
    from bahfs.sample.generate import SampleConfig, generate

    generate(root, SampleConfig(participants=participants, seed=5, max_questions=2,
                                max_seconds=14.0, workers=os.cpu_count() or 1))
    return sorted((root / "Videos").rglob("*.mp4"))


def run(videos: list[Path], runtime: Runtime, plan: Any, in_flight: int
        ) -> tuple[dict[str, float], list[list[VideoFeatures]]]:
    """Every video once, ``in_flight`` at a time, in one worker context; figures and
    features per video."""
    context = WorkerContext.open(plan, runtime)
    try:
        return _run(videos, context, in_flight)
    finally:
        context.close()


def _run(videos: list[Path], context: WorkerContext, in_flight: int
         ) -> tuple[dict[str, float], list[list[VideoFeatures]]]:
    extractors, server = list(context.extractors), context.services.server

    def one(path: Path) -> list[VideoFeatures]:
        with context.video():
            return extract_all(path, extractors)

    if server is not None:
        server.reset_stats()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        feats = list(pool.map(one, videos))
    wall = time.perf_counter() - t0
    frames = sum(f[0].n_frames for f in feats)
    out = {"wall": wall, "fps": frames / wall}
    if server is not None:
        st = server.stats
        out.update(calls=st.calls, rows_per_call=st.rows / max(st.calls, 1),
                   requests_per_call=st.requests / max(st.calls, 1),
                   occupancy=st.occupancy, idle=max(0.0, 1.0 - st.busy_s / wall),
                   busy=st.busy_s, retried=st.retried_alone)
    return out, feats


def largest_difference(a: list[list[VideoFeatures]], b: list[list[VideoFeatures]]) -> float:
    worst = 0.0
    for va, vb in zip(a, b, strict=True):
        for fa, fb in zip(va, vb, strict=True):
            if fa.spec.id != fb.spec.id:
                raise SystemExit(f"feature set ids differ: {fa.spec.id} {fb.spec.id}")
            for name, x in fa.arrays.items():
                y = fb.arrays[name]
                if x.size:
                    worst = max(worst, float(np.max(np.abs(x.astype(np.float64)
                                                           - y.astype(np.float64)))))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--in-flight", default="1,2,4", help="videos in flight, per row")
    ap.add_argument("--participants", type=int, default=3)
    ap.add_argument("--videos", type=Path, help="a folder of .mp4 files instead")
    ap.add_argument("--extractors", default="face,logmel")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: its own)")
    ap.add_argument("--max-rows", type=int, default=64)
    args = ap.parse_args()
    counts = [int(x) for x in args.in_flight.split(",")]
    device = parse_device(args.device)
    plan = plan_from_names(args.extractors.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        videos = (sorted(args.videos.rglob("*.mp4")) if args.videos
                  else sample_videos(Path(tmp), args.participants))
        today = Runtime(device, args.threads)
        batched = Runtime(device, args.threads, args.max_rows)
        run(videos[:1], today, plan, 1)  # warm-up: models loaded, first calls made
        run(videos[:1], batched, plan, 1)
        probe = WorkerContext.open(plan, batched)
        where = probe.extractors[0].device
        probe.close()
        print(f"{len(videos)} videos, extractors {args.extractors}, device {where}, "
              f"{os.cpu_count()} cores, "
              f"max {args.max_rows} rows a model call")
        base, ref = run(videos, today, plan, 1)
        rows: list[tuple[str, dict[str, float], float]] = [("today, 1", base, 0.0)]
        for n in counts:
            figures, feats = run(videos, batched, plan, n)
            rows.append((f"model thread, {n}", figures, largest_difference(ref, feats)))
    one = next((f for name, f, _ in rows if name == "model thread, 1"), base)
    print(f"{'in flight':>18} {'wall s':>7} {'frames/s':>9} {'calls':>6} {'rows/call':>9} "
          f"{'reqs/call':>9} {'occupancy':>9} {'idle':>6} {'x fps':>6} {'x occ':>6} {'x idle':>6} "
          f"{'max |diff|':>10}")
    for name, f, diff in rows:
        if "calls" not in f:
            print(f"{name:>18} {f['wall']:7.1f} {f['fps']:9.1f} {'':>6} {'':>9} {'':>9} "
                  f"{'':>9} {'':>6} {f['fps'] / one['fps']:6.2f} {'':>6} {'':>6} "
                  f"{'(reference)':>10}")
            continue
        print(f"{name:>18} {f['wall']:7.1f} {f['fps']:9.1f} {f['calls']:6.0f} "
              f"{f['rows_per_call']:9.1f} {f['requests_per_call']:9.2f} "
              f"{f['occupancy']:9.2f} {f['idle']:6.2f} "
              f"{f['fps'] / one['fps']:6.2f} {f['occupancy'] / one['occupancy']:6.2f} "
              f"{f['idle'] / max(one['idle'], 1e-9):6.2f} {diff:10.3g}")


if __name__ == "__main__":
    main()
