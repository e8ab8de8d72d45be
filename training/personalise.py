"""The personalisation protocol: each test participant is a target domain.

Each target participant's videos are split into target train, validation and test
videos with both classes (A/H and A/H-free videos) in each; a participant with
too few videos of either class for that is skipped and reported.
:func:`targets` yields, per target, the source videos (the train split: other
participants) and the target's three splits. Two baselines on store features:

* source-only: a model trained on the source, tested on each target's test videos;
* oracle: that model fine-tuned on the target's labelled train videos, then tested
  on the same test videos (the validation videos are reported, not used).

Results are per participant (keyed by the pseudonymous subject hash) and as
mean and standard deviation over participants of the frame-level metrics, the
form of the paper's personalisation table.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from store.access import new_dir
from store.backend import Store
from store.consent import subject_hash
from store.errors import ConfigError
from store.local import as_store
from store.reader import FeatureReader
from training.data import Source, WindowDataset, resolve_sources
from training.device import device_errors, model_device, torch_device
from training.models import build_model
from training.protocol import build_optimizer
from training.reports import SUMMARISED, mean_std
from training.run import (
    TrainConfig,
    evaluate_predictions,
    fit,
    make_loader,
    predict_frames,
    run_store,
    seed_everything,
)


@dataclass(frozen=True)
class TargetSplit:
    """One target participant's videos, split three ways with both classes in each."""

    participant_id: str
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]


def split_target(participant_id: str, videos: pl.DataFrame, seed: int = 0
                 ) -> TargetSplit | str:
    """The target's split, or the reason it cannot have one."""
    rng = np.random.default_rng([seed, int(subject_hash(participant_id)[:8], 16)])
    parts: list[list[str]] = [[], [], []]
    for label in (1, 0):
        ids = sorted(videos.filter(pl.col("global_label") == label)["video_id"].to_list())
        if len(ids) < 3:
            return f"{len(ids)} {'A/H' if label else 'A/H-free'} videos (3 needed)"
        ids = [ids[i] for i in rng.permutation(len(ids))]
        n_test = n_val = max(1, len(ids) // 4)
        parts[2] += ids[:n_test]
        parts[1] += ids[n_test:n_test + n_val]
        parts[0] += ids[n_test + n_val:]
    return TargetSplit(participant_id, *(tuple(sorted(p)) for p in parts))


def targets(store: Store | Path, split: str = "test", seed: int = 0,
            present: set[str] | None = None
            ) -> tuple[list[str], list[TargetSplit], dict[str, str]]:
    """Source video ids (the train split), the target splits, and the skipped targets;
    with ``present``, only those videos (e.g. the ones extracted) are used."""
    if split == "train":
        raise ConfigError("the targets cannot come from the train split: it is the source",
                          expected="--split test or val")
    videos = as_store(store).read_table("videos").filter(pl.col("global_label").is_not_null())
    if present is not None:
        videos = videos.filter(pl.col("video_id").is_in(list(present)))
    source = sorted(videos.filter(pl.col("split") == "train")["video_id"].to_list())
    done, skipped = [], {}
    for (pid,), mine in videos.filter(pl.col("split") == split).group_by(
            "participant_id", maintain_order=True):
        got = split_target(str(pid), mine, seed)
        if isinstance(got, str):
            skipped[str(pid)] = got
        else:
            done.append(got)
    return source, done, skipped


def iter_targets(store: Store | Path, split: str = "test", seed: int = 0
                 ) -> Iterator[tuple[list[str], TargetSplit]]:
    """``(source video ids, target split)`` per target participant that has one."""
    source, found, _ = targets(store, split, seed)
    for target in found:
        yield source, target


def _fit(model: torch.nn.Module, cfg: TrainConfig, ds: WindowDataset, epochs: int,
         lr: float) -> None:
    keys = [s.modality for s in ds.sources]
    device = model_device(model)
    opt = build_optimizer(cfg.optimizer, model.parameters(), lr=lr,
                          weight_decay=cfg.weight_decay, momentum=cfg.momentum,
                          nesterov=cfg.nesterov)
    for _ in fit(model, make_loader(ds, cfg, train=True, device=device), opt, keys, epochs,
                 device):
        pass


def _test(model: torch.nn.Module, store: Store, cfg: TrainConfig, sources: list[Source],
          ids: tuple[str, ...]) -> dict[str, Any]:
    ds = WindowDataset(store, sources, length=cfg.window, hop=cfg.window,
                       video_ids=list(ids), cache_bytes=0)  # read once
    result = evaluate_predictions(ds, predict_frames(model, ds, [s.modality
                                                                 for s in ds.sources]))
    return {"frame": result["frame"], "video": result["video"], "frames": result["frames"]}


def personalise(cfg: TrainConfig, *, finetune_epochs: int = 3, finetune_lr: float = 1e-3,
                split: str = "test", log: Any = print) -> Path:
    """Run both baselines over every target participant (on ``cfg.device``); return the
    run directory."""
    device = torch_device(cfg.device)
    cfg = cfg.model_copy(update={"device": str(device)})  # recorded: the device used
    with device_errors(device):
        return _personalise(cfg, device, finetune_epochs, finetune_lr, split, log)


def _personalise(cfg: TrainConfig, device: torch.device, finetune_epochs: int,
                 finetune_lr: float, split: str, log: Any) -> Path:
    seed_everything(cfg.seed)
    store = run_store(cfg)
    sources = resolve_sources(store, list(cfg.modalities))
    reader = FeatureReader(store)
    present = set.intersection(*(set(reader.extracted(s.feature_set)) for s in sources))
    source_ids, found, skipped = targets(store, split, cfg.seed, present)
    if not found:
        raise ConfigError(f"no {split} participant has 3 videos of each class",
                          expected="targets with both classes in train, val and test")
    model = build_model(cfg.model, {s.modality: s.dim for s in sources}, cfg.hidden).to(device)
    source_ds = WindowDataset(store, sources, length=cfg.window, hop=cfg.hop,
                              video_ids=source_ids, cache_bytes=cfg.cache_mb << 20)
    _fit(model, cfg, source_ds, cfg.epochs, cfg.lr)
    log(f"source model: {len(source_ids)} videos, {cfg.epochs} epochs on {device}; "
        f"{len(found)} targets, {len(skipped)} skipped")
    per: dict[str, dict[str, Any]] = {}
    for target in found:
        key = subject_hash(target.participant_id)[:16]
        tuned = copy.deepcopy(model)
        tuned_ds = WindowDataset(store, sources, length=cfg.window, hop=cfg.hop,
                                 video_ids=list(target.train), cache_bytes=cfg.cache_mb << 20)
        _fit(tuned, cfg, tuned_ds, finetune_epochs, finetune_lr)
        per[key] = {"videos": {k: len(v) for k, v in asdict(target).items()
                               if k != "participant_id"},
                    "source_only": _test(model, store, cfg, sources, target.test),
                    "oracle": _test(tuned, store, cfg, sources, target.test),
                    "oracle_val": _test(tuned, store, cfg, sources, target.val)}
    summary = {b: {k: mean_std([p[b]["frame"][k] for p in per.values()]) for k in SUMMARISED}
               for b in ("source_only", "oracle")}
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    run = Path(cfg.out) / f"{stamp}-personalise-{cfg.model}-s{cfg.seed}"
    access = store.access  # the run holds what the store holds: same modes
    new_dir(run, access)
    (run / "results.json").write_text(json.dumps({
        "config": cfg.model_dump(mode="json"), "finetune_epochs": finetune_epochs,
        "finetune_lr": finetune_lr, "split": split, "targets": per,
        "skipped": {subject_hash(p)[:16]: why for p, why in skipped.items()},
        "summary": summary}, indent=2))
    access.apply_tree(run)
    return run
