"""The training loader's path against in-memory numpy, shared by the store and train
benchmarks.

The path measured is the one `bahfs train` takes: `training.run.make_loader` (the
train sampler, batches of `batch_size`, `WindowDataset.__getitems__`). The baseline is
the same dataset class with every window gathered from per-video numpy arrays loaded
into memory before timing starts (`InMemoryWindows`): same items, same sampler order,
same output tensors; only where the features come from differs.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from training.data import Source, WindowDataset


class InMemoryWindows(WindowDataset):
    """The same windows, sliced from arrays loaded into memory up front."""

    def __init__(self, base: WindowDataset,
                 memory: dict[str, dict[str, np.ndarray]] | None = None) -> None:
        """``memory``: modality -> video id -> float16 array, when already loaded."""
        self.__dict__.update(base.__dict__)
        self.memory = memory or {
            s.modality: {v: base.reader.read_rows(s.feature_set, v, s.array, 0,
                                                  base.reader.n_frames(v)).astype(np.float16)
                         for v in base.videos["video_id"]} for s in base.sources}

    def _read(self, s: Source, items: list[tuple[str, int]], out: np.ndarray) -> None:
        arrays, length = self.memory[s.modality], self.length
        for b, (vid, start) in enumerate(items):
            arr = arrays[vid]
            k = min(length, arr.shape[0] - start)
            out[b, :k] = arr[start:start + k]
            if k < length:
                out[b, k:] = 0


def paired_batches(a: WindowDataset, b: WindowDataset, batches: list[list[int]]
                   ) -> tuple[float, float]:
    """Windows per second of ``a`` and of ``b`` reading ``batches`` (lists of indices)
    the DataLoader's way, each batch read by one then the other (the order swapped
    every batch), so both see the same machine load."""
    spent = [0.0, 0.0]
    for k, idx in enumerate(batches):
        for j in ((0, 1) if k % 2 == 0 else (1, 0)):
            t0 = time.perf_counter()
            (a, b)[j].__getitems__(idx)
            spent[j] += time.perf_counter() - t0
    n = sum(map(len, batches))
    return n / spent[0], n / spent[1]


def paired_epoch(a: DataLoader[Any], b: DataLoader[Any], epoch: int) -> tuple[float, float]:
    """Windows per second of loaders ``a`` and ``b`` over one epoch (their samplers told
    the epoch), iterated in lockstep, each batch fetched by one then the other (order
    swapped every batch), so both see the same machine load. 0-worker loaders."""
    for loader in (a, b):
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
    its, spent, n, k = [iter(a), iter(b)], [0.0, 0.0], 0, 0
    while True:
        got = [None, None]
        for j in ((0, 1) if k % 2 == 0 else (1, 0)):
            t0 = time.perf_counter()
            got[j] = next(its[j], None)
            spent[j] += time.perf_counter() - t0
        if got[0] is None or got[1] is None:
            if got[0] is not got[1]:
                raise RuntimeError("the two loaders gave different numbers of batches")
            return n / spent[0], n / spent[1]
        n += int(got[0]["index"].numel())
        k += 1


def epoch_rate(loader: DataLoader[Any], epoch: int) -> float:
    """Windows per second over one epoch of ``loader`` (its sampler told the epoch)."""
    if hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(epoch)
    t0, n = time.perf_counter(), 0
    for batch in loader:
        n += int(batch["index"].numel())
    return n / (time.perf_counter() - t0)
