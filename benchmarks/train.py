"""Training speed from the store against in-memory arrays, same run.

    .venv/bin/python -m benchmarks.train [--participants 300] [--dir /tmp/x] [--rounds 3]

Builds a BAH-sized synthetic store (about 916k frames; face 512 + audio 128 +
words 384, float16) unless --dir already holds one, then measures on the train
split (96-frame windows, hop 48, batches of 64), through `training.run.make_loader`
(the loader `bahfs train` builds; the default sampler, negative under-sampling):
- loader windows/s against the same windows gathered from numpy arrays already in
  memory (`benchmarks.loader.InMemoryWindows`), batch by batch in lockstep: the first
  epoch of a fresh dataset (its cache filling from the store), a later epoch (cache
  warm), the store read every batch (``cache_bytes=0``), and the item-by-item path
  training took before batches were read whole; 0 workers, then 2 (steady state);
- one TCN epoch over every train window (`--sampler all`): store (a fresh dataset's
  first epoch; a later epoch, best of 2) against in-memory (best of 2, alternating),
  with the losses (identical batches give identical losses).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from benchmarks.loader import InMemoryWindows, epoch_rate, paired_epoch
from benchmarks.synthetic import SyntheticConfig, make_synthetic_store
from training.data import DEFAULT_CACHE_BYTES, WindowDataset, resolve_sources
from training.models import build_model
from training.run import TrainConfig, make_loader, seed_everything, train_epoch

MODALITIES = ["face", "audio", "words"]


class ItemWindows(WindowDataset):
    """The item-by-item path: the DataLoader calls ``__getitem__`` per window."""

    __getitems__ = None  # type: ignore[assignment]


def dataset(store: Path, cache_bytes: int = DEFAULT_CACHE_BYTES,
            kind: type[WindowDataset] = WindowDataset) -> WindowDataset:
    return kind(store, resolve_sources(store, MODALITIES), length=96, hop=48, split="train",
                cache_bytes=cache_bytes)


def tcn_epoch(loader: DataLoader[Any], epoch: int) -> tuple[float, float]:
    seed_everything(0)
    model = build_model("tcn", {m: loader.dataset.sources[i].dim  # type: ignore[attr-defined]
                                for i, m in enumerate(MODALITIES)}, 64)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    if hasattr(loader.sampler, "set_epoch"):
        loader.sampler.set_epoch(epoch)
    torch.manual_seed(epoch)  # the shuffle order of epoch `epoch`, the same for every loader
    t0 = time.perf_counter()
    loss = train_epoch(model, loader, opt, MODALITIES)
    return time.perf_counter() - t0, loss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--participants", type=int, default=300)
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    store = (args.dir or Path(tempfile.mkdtemp(prefix="bahfs-train-bench-"))) / "store"
    if not (store / "features.zarr").exists():
        t0 = time.perf_counter()
        make_synthetic_store(store, SyntheticConfig(participants=args.participants,
                                                    videos_per_participant=5,
                                                    mean_frames=611))
        print(f"built synthetic store in {time.perf_counter() - t0:.0f} s: {store}")
    cfg = TrainConfig(store=store)
    uncached = dataset(store, 0)
    frames = int(uncached.videos["n_frames"].sum())
    t0 = time.perf_counter()
    mem = InMemoryWindows(uncached)
    t_load = time.perf_counter() - t0
    n_epoch = len(make_loader(uncached, cfg, train=True).sampler)  # type: ignore[arg-type]
    print(f"train split: {uncached.videos.height} videos, {frames} frames, {len(uncached)} "
          f"windows; {n_epoch} per under-sampled epoch; loading it into memory took "
          f"{t_load:.2f} s")
    loaders = {"memory": make_loader(mem, cfg, True),
               "uncached": make_loader(uncached, cfg, True),
               "items": make_loader(dataset(store, 0, ItemWindows), cfg, True)}
    for name in ("uncached", "items"):  # warm the page cache and the maps
        paired_epoch(loaders[name], loaders["memory"], 0)
    rows: dict[str, list[float]] = {k: [] for k in ("first", "steady", "uncached", "items")}
    rates: dict[str, list[float]] = {k: [] for k in ("memory", *rows)}
    for r in range(args.rounds):
        fresh = make_loader(dataset(store), cfg, True)
        for key, loader, epoch in (("first", fresh, r), ("steady", fresh, r + 1),
                                   ("uncached", loaders["uncached"], r),
                                   ("items", loaders["items"], r)):
            a, b = paired_epoch(loader, loaders["memory"], epoch)
            rows[key].append(a / b)
            rates[key].append(a)
            rates["memory"].append(b)
        del fresh
    print(f"loader, 0 workers, windows/s (median of {args.rounds} rounds, each epoch "
          f"fetching a batch from the store path then from memory, alternating), "
          f"in-memory {statistics.median(rates['memory']):,.0f}:")
    for key, what in (("first", "first epoch, cache filling from the store"),
                      ("steady", "later epoch, cache warm (the default path)"),
                      ("uncached", "store read every batch (cache_bytes=0)"),
                      ("items", "item by item (the path before batches)")):
        print(f"  {what}: {statistics.median(rates[key]):,.0f}/s, ratio "
              f"{statistics.median(rows[key]):.2f}")
    w_cfg = cfg.model_copy(update={"workers": 2})
    w_store, w_mem = make_loader(dataset(store), w_cfg, True), make_loader(mem, w_cfg, True)
    w_first = epoch_rate(w_store, 0)
    epoch_rate(w_mem, 0)
    w_steady, w_m = epoch_rate(w_store, 1), epoch_rate(w_mem, 1)
    print(f"loader, 2 workers (each fills its own cache): first epoch {w_first:,.0f}/s; "
          f"later epoch {w_steady:,.0f}/s against in-memory {w_m:,.0f}/s, "
          f"ratio {w_steady / w_m:.2f}")
    del w_store, w_mem
    all_cfg = cfg.model_copy(update={"sampler": "all"})
    tcn = make_loader(dataset(store), all_cfg, True)
    mem_tcn = make_loader(mem, all_cfg, True)
    t_first, loss_first = tcn_epoch(tcn, 0)
    later: list[float] = []
    in_memory: list[float] = []
    for _ in range(2):  # alternating; the faster of each, less disturbed by other load
        t, loss_s = tcn_epoch(tcn, 1)
        later.append(t)
        t, loss_m = tcn_epoch(mem_tcn, 1)
        in_memory.append(t)
    t_second, t_mem = min(later), min(in_memory)
    print(f"one TCN epoch over {len(uncached)} windows: store {t_first:.1f} s (first epoch) "
          f"/ {t_second:.1f} s (later epoch, best of 2), in-memory {t_mem:.1f} s (best of "
          f"2), ratio {t_mem / t_second:.2f} (losses {loss_s:.4f} / {loss_m:.4f}; first "
          f"{loss_first:.4f})")

if __name__ == "__main__":
    main()
