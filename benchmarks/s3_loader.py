"""Training's loader reading a store in a bucket, against the local store and
in-memory numpy, on the same synthetic data in one run.

    .venv/bin/python -m benchmarks.s3_loader [--participants 30] [--dir /tmp/x] [--rounds 3]

Builds a synthetic store (`benchmarks.synthetic`: face 512 + audio 128 + words 384,
float16, about 611 frames a video) unless --dir holds one, starts moto's S3 server on
127.0.0.1 in this process, copies the store into a bucket (`store.copy.copy_store`),
then reads the train split's windows (96 frames, hop 48, batches of 64, every window
once an epoch: `--sampler all`) through `training.run.make_loader`, 0 workers, with
no in-memory copy of videos (``cache_bytes=0``: every batch goes to the store path):
- in-memory numpy (`benchmarks.loader.InMemoryWindows`), the baseline;
- the local store (memory-mapped arrays): the first epoch of a new dataset (each
  array mapped, pre-faulted, on first touch) and a later epoch (maps held);
- the bucket through the local cache (`store.s3_cache`): the first epoch with the
  cache folder empty (each array fetched whole on first touch), a later epoch (cache
  warm, maps held), and the next run on the same folder (a new store object: one
  HEAD per video and feature set, then the maps);
- the bucket without a cache (a ranged GET per window and array), one epoch.

Each store path's epoch is read in lockstep with an in-memory epoch of the same
batches (`benchmarks.loader.paired_epoch`), so the machine's load hits both alike;
the ratio is windows/s against in-memory. Median of --rounds rounds; the cold epoch
uses a fresh cache folder each round.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from benchmarks.loader import InMemoryWindows, paired_epoch
from benchmarks.synthetic import SyntheticConfig, make_synthetic_store
from benchmarks.train import MODALITIES
from store.backend import Store
from store.copy import copy_store
from store.local import LocalStore
from store.s3 import S3Store
from store.s3_cache import S3Cache
from training.data import WindowDataset, resolve_sources
from training.run import TrainConfig, make_loader

REGION = "us-east-1"


def start_moto() -> tuple[Any, str]:
    """moto's S3 server on a free port of 127.0.0.1, with a bucket; (server, url)."""
    import boto3
    from moto.server import ThreadedMotoServer

    from benchmarks.s3_engine import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench",
                        "AWS_SECRET_ACCESS_KEY": "bench-secret", "AWS_REGION": REGION}.items():
        os.environ[name] = value  # this process is the user: the standard AWS settings
    boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(
        Bucket="bench")
    return server, "s3://bench/store"


def loader(store: Store, cfg: TrainConfig) -> DataLoader[Any]:
    ds = WindowDataset(store, resolve_sources(store, MODALITIES), length=96, hop=48,
                       split="train", cache_bytes=0)
    return make_loader(ds, cfg, train=True)


def measure(name: str, rows: dict[str, list[tuple[float, float]]], a: DataLoader[Any],
            mem: DataLoader[Any], epoch: int) -> None:
    rows.setdefault(name, []).append(paired_epoch(a, mem, epoch))


def one_round(local: LocalStore, url: str, mem: DataLoader[Any], cfg: TrainConfig,
              cache_root: Path, r: int, rows: dict[str, list[tuple[float, float]]]) -> None:
    fresh = loader(local, cfg)
    measure("local store, first epoch (arrays mapped on first touch)", rows, fresh, mem, r)
    measure("local store, later epoch (maps held)", rows, fresh, mem, r + 1)
    shutil.rmtree(cache_root, ignore_errors=True)
    s3 = S3Store.open(url, S3Cache(cache_root, 8 << 30))
    cold = loader(s3, cfg)
    measure("bucket, first epoch (cache cold)", rows, cold, mem, r)
    measure("bucket, later epoch (cache warm)", rows, cold, mem, r + 1)
    again = loader(S3Store.open(url, S3Cache(cache_root, 8 << 30)), cfg)
    measure("bucket, next run (cache warm, new store object)", rows, again, mem, r)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--participants", type=int, default=30)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="bahfs-s3-loader-"))
    store = work / "store"
    if not (store / "features.zarr").exists():
        make_synthetic_store(store, SyntheticConfig(participants=args.participants,
                                                    videos_per_participant=5,
                                                    mean_frames=611))
    server, url = start_moto()
    try:
        t0 = time.perf_counter()
        report = copy_store(store, url)
        print(f"copied {report.objects} objects, {report.bytes / 1e6:.0f} MB into {url} "
              f"(moto on 127.0.0.1) in {time.perf_counter() - t0:.1f} s")
        cfg = TrainConfig(store=store, sampler="all")
        local = LocalStore(store)
        base = loader(local, cfg).dataset
        mem = make_loader(InMemoryWindows(base), cfg, train=True)  # type: ignore[arg-type]
        frames = int(base.videos["n_frames"].sum())  # type: ignore[attr-defined]
        print(f"train split: {base.videos.height} videos, {frames} frames, "  # type: ignore[attr-defined]
              f"{len(base)} windows of 96 frames, batches of 64, 0 workers")  # type: ignore[arg-type]
        rows: dict[str, list[tuple[float, float]]] = {}
        paired_epoch(loader(local, cfg), mem, 0)  # warm the page cache and the maps
        for r in range(args.rounds):
            one_round(local, url, mem, cfg, work / "cache", r, rows)
        measure("bucket, no cache (a ranged GET per window)", rows,
                loader(S3Store.open(url), cfg), mem, 0)
    finally:
        server.stop()
    memory = statistics.median(b for pairs in rows.values() for _, b in pairs)
    print(f"| path | windows/s | ratio to in-memory (paired) | rounds |\n|---|---|---|---|\n"
          f"| in-memory numpy | {memory:,.0f} | 1.00 | |")
    for name, pairs in rows.items():
        rate = statistics.median(a for a, _ in pairs)
        ratio = statistics.median(a / b for a, b in pairs)
        print(f"| {name} | {rate:,.0f} | {ratio:.2f} | {len(pairs)} |")


if __name__ == "__main__":
    main()
