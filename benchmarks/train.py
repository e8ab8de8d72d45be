"""Training speed from the store against in-memory tensors, same run.

    .venv/bin/python -m benchmarks.train [--participants 300] [--dir /tmp/x]

Builds a BAH-sized synthetic store (about 916k frames; face 512 + audio 128 +
words 384, float16) unless --dir already holds one, then measures on the train
split (96-frame windows, hop 48, batches of 64):
- DataLoader windows/s: store-backed WindowDataset vs the same windows sliced from
  numpy arrays held in memory (0 and 2 workers);
- one TCN epoch over every train window, fed from the store vs from memory.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from benchmarks.synthetic import SyntheticConfig, make_synthetic_store
from training.data import WindowDataset, collate, resolve_sources
from training.models import build_model
from training.run import seed_everything, train_epoch

MODALITIES = ["face", "audio", "words"]


class InMemoryWindows(WindowDataset):
    """The same windows, sliced from arrays loaded into memory up front."""

    def __init__(self, base: WindowDataset) -> None:
        self.__dict__.update(base.__dict__)
        self.memory = {s.modality: {v: base.reader.read_rows(s.feature_set, v, s.array, 0,
                                                             base.reader.n_frames(v))
                                    for v in base.videos["video_id"]} for s in base.sources}
        self.mem_labels = {v: base.reader.labels(v).astype(np.int64)
                           for v in base.videos["video_id"]}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        vid, start = self.items[i]
        out = {}
        for s in self.sources:
            x = np.zeros((self.length, s.dim), np.float16)
            part = self.memory[s.modality][vid][start:start + self.length]
            x[: len(part)] = part
            out[s.modality] = torch.from_numpy(x)
        lab = np.zeros(self.length, np.int64)
        part_l = self.mem_labels[vid][start:start + self.length]
        lab[: len(part_l)] = part_l
        mask = np.zeros(self.length, bool)
        mask[: len(part_l)] = True
        out.update(labels=torch.from_numpy(lab), mask=torch.from_numpy(mask),
                   index=torch.tensor(i))
        return out


def loader_rate(ds: WindowDataset, workers: int) -> float:
    loader = DataLoader(ds, batch_size=64, shuffle=True, num_workers=workers,
                        collate_fn=collate, multiprocessing_context="fork" if workers else None,
                        generator=torch.Generator().manual_seed(0))
    t0, n = time.perf_counter(), 0
    for batch in loader:
        n += int(batch["index"].numel())
    return n / (time.perf_counter() - t0)


def epoch_seconds(ds: WindowDataset) -> tuple[float, float]:
    seed_everything(0)
    model = build_model("tcn", {s.modality: s.dim for s in ds.sources}, 64)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    loader = DataLoader(ds, batch_size=64, shuffle=True, collate_fn=collate,
                        generator=torch.Generator().manual_seed(0))
    t0 = time.perf_counter()
    loss = train_epoch(model, loader, opt, [s.modality for s in ds.sources])
    return time.perf_counter() - t0, loss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--participants", type=int, default=300)
    ap.add_argument("--dir", type=Path, default=None)
    args = ap.parse_args()
    store = (args.dir or Path(tempfile.mkdtemp(prefix="bahfs-train-bench-"))) / "store"
    if not (store / "features.zarr").exists():
        t0 = time.perf_counter()
        make_synthetic_store(store, SyntheticConfig(participants=args.participants,
                                                    videos_per_participant=5,
                                                    mean_frames=611))
        print(f"built synthetic store in {time.perf_counter() - t0:.0f} s: {store}")
    ds = WindowDataset(store, resolve_sources(store, MODALITIES), length=96, hop=48,
                       split="train")
    frames = int(ds.videos["n_frames"].sum())
    print(f"train split: {ds.videos.height} videos, {frames} frames, {len(ds)} windows")
    mem = InMemoryWindows(ds)
    loader_rate(ds, 0)  # warm the page cache and maps
    for workers in (0, 2):
        a, b = loader_rate(ds, workers), loader_rate(mem, workers)
        print(f"DataLoader, {workers} workers: store {a:,.0f} windows/s, in-memory "
              f"{b:,.0f} windows/s, ratio {a / b:.2f}")
    t_store, loss_s = epoch_seconds(ds)
    t_mem, loss_m = epoch_seconds(mem)
    print(f"one TCN epoch over {len(ds)} windows: store {t_store:.1f} s, in-memory "
          f"{t_mem:.1f} s, ratio {t_mem / t_store:.2f} (losses {loss_s:.4f} / {loss_m:.4f})")


if __name__ == "__main__":
    main()
