"""Feature-store speed on a BAH-sized synthetic store, against in-memory numpy.

    .venv/bin/python -m benchmarks.store [--videos 1427] [--frames 916618] [--dir /tmp/x]

Prints: write MB/s; 96-frame multimodal windows/s (face 512 + audio 128 + word 384,
float16, plus labels and masks) read in random batches of 64 the way training reads
them (`training.data.WindowDataset.__getitems__`, what a DataLoader calls): a first
pass over every window of a fresh dataset (its per-video cache filling from the
store), a later pass (cache warm), and the store read every batch
(``cache_bytes=0``), each against the same windows gathered from in-memory numpy
arrays (`benchmarks.loader.InMemoryWindows`, batch by batch in turn; page cache
warm); the reader's own
`FeatureReader.windows` on random windows against `np.stack` of in-memory slices;
bytes per frame on disk; time to append a 10-video batch to a small and to the full store; and,
on a subset, the layout alternatives (zarr-python reads, 256-frame chunks, zstd).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import zarr

from benchmarks.loader import InMemoryWindows, paired_batches
from store.features import ArraySpec, FeatureSetSpec, VideoFeatures
from store.reader import FeatureReader
from store.tables import write_table
from store.writer import FeatureWriter
from training.data import DEFAULT_CACHE_BYTES, WindowDataset, resolve_sources

DIMS = {"face": 512, "audio": 128, "words": 384}
WINDOW, BATCH = 96, 64


def specs() -> dict[str, FeatureSetSpec]:
    return {m: FeatureSetSpec(m, {"bench": True}, "0" * 64,
                              (ArraySpec("embedding", "float16", (d,)),))
            for m, d in DIMS.items()}


def lengths(n_videos: int, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    raw = rng.gamma(2.0, 1.0, n_videos)
    out = np.maximum(72, (raw / raw.sum() * n_frames).astype(int))
    out[0] += n_frames - out.sum()
    return out


def write_tables(store: Path, n: np.ndarray, offset: int = 0) -> None:
    ids = [f"P{(i + offset) // 5:04d}__Visite_1__Q{(i + offset) % 5 + 1}" for i in range(len(n))]
    pids = [v.split("__")[0] for v in ids]
    write_table(store, "videos", pl.DataFrame({
        "video_id": ids, "participant_id": pids, "visit": "Visite_1",
        "question": [(i + offset) % 5 + 1 for i in range(len(n))], "path": ids,
        "release_id": ids,
        "duration_s": n / 24.0, "fps": 24.0, "n_frames": n, "has_audio": True, "source": "",
        "global_label": 1, "split": "train", "annotator_id": "A", "transcript": ""}))
    vid_col = np.repeat(np.array(ids, dtype=object), n)
    frames = np.concatenate([np.arange(k) for k in n])
    write_table(store, "frame_labels", pl.DataFrame({
        "video_id": vid_col, "participant_id": np.repeat(np.array(pids, dtype=object), n),
        "frame": frames, "label": (frames % 7 == 0).astype(np.int8), "split": "train"}))


def features(spec: FeatureSetSpec, vid: str, pid: str, k: int, rng: np.random.Generator
             ) -> VideoFeatures:
    d = spec.arrays[0].shape[0]
    return VideoFeatures(spec, vid, pid, np.arange(k) / 24.0,
                         {"embedding": rng.standard_normal((k, d), np.float32)
                          .astype(np.float16)})


def build(store: Path, n: np.ndarray, rng: np.random.Generator, memory: dict[str, Any] | None
          ) -> tuple[float, int]:
    write_tables(store, n)
    w = FeatureWriter(store)
    total_bytes, t_write = 0, 0.0
    for i, k in enumerate(n):
        vid = f"P{i // 5:04d}__Visite_1__Q{i % 5 + 1}"
        for m, spec in specs().items():
            f = features(spec, vid, vid.split("__")[0], int(k), rng)
            if memory is not None:
                memory[m][vid] = f.arrays["embedding"]
            t0 = time.perf_counter()
            w.write(f)
            t_write += time.perf_counter() - t0
            total_bytes += f.arrays["embedding"].nbytes + f.timestamps.nbytes
    return total_bytes / t_write / 1e6, total_bytes


def items_for(n: np.ndarray, rng: np.random.Generator, count: int) -> list[tuple[str, int]]:
    long_enough = np.flatnonzero(n >= WINDOW)
    idx = long_enough[rng.integers(0, len(long_enough), count)]
    return [(f"P{i // 5:04d}__Visite_1__Q{i % 5 + 1}", int(rng.integers(0, n[i] - WINDOW + 1)))
            for i in idx]


def bench_store(reader: FeatureReader, items: list[tuple[str, int]]) -> float:
    sources = {m: (specs()[m].id, "embedding") for m in DIMS}
    t0 = time.perf_counter()
    for b in range(0, len(items), BATCH):
        reader.windows(sources, items[b:b + BATCH], WINDOW)
    return len(items) / (time.perf_counter() - t0)


def bench_memory(memory: dict[str, Any], labels: dict[str, np.ndarray],
                 items: list[tuple[str, int]]) -> float:
    t0 = time.perf_counter()
    for b in range(0, len(items), BATCH):
        batch = items[b:b + BATCH]
        {m: np.stack([memory[m][v][s:s + WINDOW] for v, s in batch]) for m in DIMS}
        np.stack([labels[v][s:s + WINDOW] for v, s in batch])
    return len(items) / (time.perf_counter() - t0)


def build_variant(store: Path, used: list[str], chunks: int | None, compress: bool,
                  rng: np.random.Generator, n: np.ndarray) -> dict[tuple[str, str], Any]:
    """A layout variant of the same features (a subset of videos), opened by zarr-python."""
    root = zarr.open_group(str(store / "variant.zarr"), mode="w")
    arrays = {}
    for v in used:
        k = int(n[int(v[1:5]) * 5 + int(v[-1]) - 1])
        for m, d in DIMS.items():
            a = root.create_array(f"{m}/{v}", shape=(k, d), dtype="float16",
                                  chunks=(chunks or k, d),
                                  compressors=zarr.codecs.ZstdCodec() if compress else None)
            a[...] = rng.standard_normal((k, d), np.float32).astype(np.float16)
            arrays[(m, v)] = a
    return arrays


def bench_zarr_api(arrays: dict[tuple[str, str], Any], items: list[tuple[str, int]]) -> float:
    t0 = time.perf_counter()
    for v, s in items:
        for m in DIMS:
            arrays[(m, v)][s:s + WINDOW]
    return len(items) / (time.perf_counter() - t0)


def du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--videos", type=int, default=1427)
    ap.add_argument("--frames", type=int, default=916_618)
    ap.add_argument("--windows", type=int, default=20_000)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    base = Path(args.dir or tempfile.mkdtemp(prefix="bahfs-store-bench-"))
    shutil.rmtree(base, ignore_errors=True)
    n = lengths(args.videos, args.frames, rng)
    memory: dict[str, Any] = {m: {} for m in DIMS}
    store = base / "full"
    mbps, nbytes = build(store, n, rng, memory)
    disk = du(store / "features.zarr")
    print(f"store: {len(n)} videos, {int(n.sum())} frames, dims {DIMS} float16")
    print(f"write: {mbps:.0f} MB/s ({nbytes / 1e9:.2f} GB of arrays)")
    print(f"disk: {disk / n.sum():.0f} bytes/frame (raw arrays {nbytes / n.sum():.0f})")

    reader = FeatureReader(store)
    labels = {v: reader.labels(v) for v in memory["face"]}
    ds_rounds = 3

    def training_set(cache_bytes: int) -> WindowDataset:
        return WindowDataset(store, resolve_sources(store, list(DIMS)), length=WINDOW,
                             hop=WINDOW // 2, split="train", cache_bytes=cache_bytes)

    uncached = training_set(0)
    mem = InMemoryWindows(uncached, memory)
    warm = training_set(DEFAULT_CACHE_BYTES)
    n_windows = len(uncached)

    def epoch(r: int) -> list[list[int]]:
        order = np.random.default_rng(r).permutation(n_windows).tolist()
        return [order[b:b + BATCH] for b in range(0, len(order), BATCH)]

    paired_batches(uncached, mem, epoch(99))  # warm the page cache and the maps
    paired_batches(warm, mem, epoch(99))  # fills its cache
    ratios: dict[str, list[float]] = {"first": [], "warm": [], "uncached": []}
    held = 0
    for r in range(ds_rounds):
        fresh = training_set(DEFAULT_CACHE_BYTES)
        for key, ds in (("first", fresh), ("warm", warm), ("uncached", uncached)):
            a, b = paired_batches(ds, mem, epoch(r))
            ratios[key].append(a / b)
        held = sum(len(h) for h in fresh.cache.arrays.values())
        del fresh
    print(f"training path: {n_windows} windows of {WINDOW} frames (hop {WINDOW // 2}) "
          f"in random batches of {BATCH}, WindowDataset.__getitems__ against in-memory "
          f"numpy (batches alternating), median ratio of {ds_rounds} epochs:")
    print(f"  first epoch, cache filling from the store: {statistics.median(ratios['first']):.2f}"
          f" ({held} of {3 * len(n)} per-video arrays held, "
          f"{DEFAULT_CACHE_BYTES >> 20} MiB budget)")
    print(f"  later epoch, cache warm: {statistics.median(ratios['warm']):.2f}")
    print(f"  store read every batch (cache_bytes=0): "
          f"{statistics.median(ratios['uncached']):.2f}")
    del warm, mem, uncached

    items = items_for(n, rng, args.windows)
    bench_store(reader, items[:2000])  # warm the page cache and metadata caches
    bench_memory(memory, labels, items[:2000])
    rounds = 5
    per = len(items) // rounds
    rates = [(bench_store(reader, items[r * per:(r + 1) * per]),
              bench_memory(memory, labels, items[r * per:(r + 1) * per])) for r in range(rounds)]
    w_store = statistics.median(a for a, _ in rates)
    w_mem = statistics.median(b for _, b in rates)
    ratio = statistics.median(a / b for a, b in rates)
    print(f"FeatureReader.windows: random {WINDOW}-frame windows (3 modalities + labels, "
          f"batches of {BATCH}), median of {rounds} alternating rounds:")
    print(f"  store {w_store:,.0f}/s   in-memory numpy {w_mem:,.0f}/s   ratio {ratio:.2f}")

    def append(target: Path, tag: str) -> float:
        w = FeatureWriter(target)
        t0 = time.perf_counter()
        for j in range(10):
            vid = f"B{tag}{j:03d}__Visite_1__Q1"
            for spec in specs().values():
                w.write(features(spec, vid, f"B{tag}{j:03d}", 600, rng))
        return time.perf_counter() - t0

    small = base / "small"
    write_tables(small, n[:10])
    FeatureWriter(small)
    times = [(append(small, str(r)), append(store, str(r))) for r in range(5)]
    t_small = statistics.median(a for a, _ in times)
    t_full = statistics.median(b for _, b in times)
    print(f"append 10 videos x 3 modalities (median of 5): small store {t_small:.3f} s, "
          f"full store {t_full:.3f} s, ratio {t_full / t_small:.2f}")

    sub = items_for(n[:150], rng, 3000)
    used = sorted({v for v, _ in sub})
    variants = {"zarr-python, whole-video chunk, raw": (None, False),
                "zarr-python, 256-frame chunks, raw": (256, False),
                "zarr-python, whole-video chunk, zstd": (None, True)}
    print(f"layout variants ({len(used)} videos), {len(sub)} windows x 3 modalities "
          "through zarr-python, no labels:")
    sizes = {}
    for name, (chunks, comp) in variants.items():
        arrays = build_variant(base, used, chunks, comp, rng, n)
        bench_zarr_api(arrays, sub[:300])  # warm
        rate = bench_zarr_api(arrays, sub)
        sizes[name] = du(base / "variant.zarr")
        print(f"  {name}: {rate:,.0f} windows/s ({rate / w_mem:.3f} of in-memory)")
    ratio = sizes["zarr-python, whole-video chunk, raw"] / sizes[
        "zarr-python, whole-video chunk, zstd"]
    print(f"  zstd on float16 features: {ratio:.2f}x smaller")
    if args.dir is None:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
