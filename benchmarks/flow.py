"""The Prefect ``extract`` flow on Dask against extracting the same inbox in one
process, one video after another (the baseline), in the same run.

    .venv/bin/python -m benchmarks.flow INBOX [--workers 1 2]

INBOX is a folder of generated batches (`bahfs sample-data INBOX/batch-001 ...`).
Each variant writes a fresh store with all four default extractors. Reported:
wall time (models loaded, Dask started, tables written, everything), frames/s,
and the ratio to the baseline. The flow runs on Prefect's temporary local server,
so its start (a few seconds) is included in the flow's figures.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inbox", type=Path)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()

    from extractors import DEFAULT_EXTRACTORS
    from flows.batches import find_batches, ingest_batch
    from flows.engine import extract_release
    from flows.extract import extract

    names = tuple(DEFAULT_EXTRACTORS)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bahfs-flow-bench-") as tmp:
        base = Path(tmp) / "baseline"
        t0 = time.perf_counter()
        for batch in find_batches(args.inbox):
            ingest_batch(batch, base)
        rep = extract_release(base, names)
        wall = time.perf_counter() - t0
        frames = rep.frames
        rows.append(("one process, sequential (baseline)", wall, len(rep.extracted)))
        for w in args.workers:
            store = Path(tmp) / f"dask{w}"
            t0 = time.perf_counter()
            out = extract(source=str(args.inbox), store=str(store), dask_workers=w)
            wall = time.perf_counter() - t0
            if out["frames"] != frames:
                raise SystemExit(f"flow extracted {out['frames']} frames, baseline {frames}")
            rows.append((f"Prefect flow, Dask LocalCluster x{w}", wall, len(out["extracted"])))
    print(f"{frames} frames, {rows[0][2]} videos, extractors {', '.join(names)}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'variant':44s} {'wall s':>8s} {'frames/s':>9s} {'vs baseline':>12s}")
    for name, wall, _ in rows:
        print(f"{name:44s} {wall:8.1f} {frames / wall:9.1f} {rows[0][1] / wall:11.2f}x")


if __name__ == "__main__":
    main()
