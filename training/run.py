"""Train a baseline from the store and evaluate it with the official BAH metrics.

Each epoch is evaluated on the validation split and the run keeps the epoch chosen
by ``select`` (the official rule: the best validation AP; :mod:`training.protocol`).
A run directory holds ``config.json``, ``model.pt`` (the selected epoch's weights +
what is needed to rebuild the model) and ``results.json`` (config, the feature sets
used with their model SHA-256, the per-epoch history with its validation metrics,
``selected_epoch`` and why, and per split the frame- and video-level metrics with
the threshold-free AP, the all-negative baseline, per-participant and per-group
reports: :mod:`training.reports`).
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch.utils.data import DataLoader

from store.access import new_dir
from store.backend import Store
from store.errors import ConfigError, CorruptError, NotFoundError
from store.s3_cache import DEFAULT_CACHE_MB
from store.s3_objects import S3Address, is_s3
from training import reports
from training.data import (
    DEFAULT_CACHE_BYTES,
    NegativeUndersampler,
    ParticipantBalancedSampler,
    Source,
    WindowDataset,
    collate,
    open_run_store,
    resolve_sources,
)
from training.device import device_errors, model_device, pins, to_device, torch_device
from training.metrics import bah_metrics, video_logits, video_probability
from training.models import build_model
from training.protocol import (
    OPTIMIZERS,
    SCHEDULES,
    SELECT,
    EpochSelector,
    build_optimizer,
    build_schedule,
)


class TrainConfig(BaseModel):
    """Options of one training run (validated)."""

    model_config = ConfigDict(frozen=True)

    store: Path | str  # a folder, or s3://bucket/prefix (kept as that text)
    model: str = "tcn"
    modalities: tuple[str, ...] = ("face", "audio", "words")
    window: int = Field(default=96, ge=1)
    hop: int = Field(default=48, ge=1)
    epochs: int = Field(default=5, ge=1)
    batch_size: int = Field(default=64, ge=1)
    lr: float = Field(default=2e-3, gt=0)
    optimizer: str = Field(default="adamw", pattern=f"^({'|'.join(OPTIMIZERS)})$")
    momentum: float = Field(default=0.9, ge=0, lt=1)  # sgd only
    nesterov: bool = False  # sgd only
    weight_decay: float = Field(default=1e-4, ge=0)
    schedule: str = Field(default="none", pattern=f"^({'|'.join(SCHEDULES)})$")
    step_size: int = Field(default=30, ge=1)  # schedule "step": epochs between decays
    gamma: float = Field(default=0.1, gt=0, le=1)  # schedule "step": the decay factor
    # which epoch the run keeps: the best validation AP (the official rule), the best
    # validation AVGF1, or the last; patience: stop after that many epochs without a
    # better one (0: never)
    select: str = Field(default="val_ap_pos", pattern=f"^({'|'.join(SELECT)})$")
    patience: int = Field(default=0, ge=0)
    preset: str | None = None  # recorded: the preset the options came from
    hidden: int = Field(default=64, ge=4)
    seed: int = 0
    sampler: str = Field(default="undersample", pattern="^(undersample|participant|all)$")
    undersample_ratio: float = Field(default=1.0, gt=0)
    workers: int = Field(default=0, ge=0)
    # in-memory copy of per-video features each dataset may keep (MiB, per process; 0:
    # read the store every batch); what the run computes does not depend on it
    cache_mb: int = Field(default=DEFAULT_CACHE_BYTES >> 20, ge=0)
    # a store in a bucket: the local folder its arrays are fetched into (None: under
    # the OS cache folder, store.s3_cache) and its bound in MiB (0: no cache, every
    # read a ranged GET); what the run computes does not depend on them
    s3_cache: Path | None = None
    s3_cache_mb: int = Field(default=DEFAULT_CACHE_MB, ge=0)
    out: Path = Path("runs")
    # auto, cpu, cuda or cuda:N (None: $BAHFS_DEVICE, else auto); a run records the
    # device it used here (config.json)
    device: str | None = None

    @field_validator("store", mode="before")
    @classmethod
    def _location(cls, value: object) -> Path | str:
        """``s3://bucket/prefix`` as that text (a Path would fold its ``//``), any
        other location a Path."""
        return str(S3Address.parse(value)) if is_s3(value) else Path(str(value))


def run_store(cfg: TrainConfig) -> Store:
    """The store of ``cfg``, read through its cache settings (:func:`open_run_store`)."""
    return open_run_store(cfg.store, cfg.s3_cache, cfg.s3_cache_mb)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_loader(ds: WindowDataset, cfg: TrainConfig, train: bool,
                device: torch.device | None = None) -> DataLoader[Any]:
    """Batches of ``ds`` (pinned when they go to a CUDA ``device``)."""
    sampler: Any = None
    if train and cfg.sampler == "undersample":
        sampler = NegativeUndersampler(ds.positive, cfg.undersample_ratio, cfg.seed)
    elif train and cfg.sampler == "participant":
        sampler = ParticipantBalancedSampler(ds.participants, seed=cfg.seed)
    return DataLoader(ds, batch_size=cfg.batch_size, sampler=sampler,
                      shuffle=train and sampler is None, num_workers=cfg.workers,
                      collate_fn=collate, persistent_workers=cfg.workers > 0,
                      pin_memory=device is not None and pins(device),
                      multiprocessing_context="fork" if cfg.workers > 0 else None)


def train_epoch(model: torch.nn.Module, loader: DataLoader[Any], opt: torch.optim.Optimizer,
                keys: list[str], device: torch.device | None = None) -> float:
    """One epoch on ``device`` (default: where the model is); the mean frame loss."""
    device = device or model_device(model)
    model.train()
    total, count = 0.0, 0
    for cpu_batch in loader:
        batch = to_device(cpu_batch, [*keys, "labels", "mask"], device)
        logits = model({k: batch[k] for k in keys})
        mask = batch["mask"]
        loss = torch.nn.functional.cross_entropy(logits[mask], batch["labels"][mask])
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        total += loss.item() * int(mask.sum())
        count += int(mask.sum())
    return total / max(count, 1)


@torch.no_grad()
def predict_frames(model: torch.nn.Module, ds: WindowDataset, keys: list[str],
                   batch_size: int = 128, device: torch.device | None = None
                   ) -> dict[str, np.ndarray]:
    """Per-frame logits for every frame of every video of ``ds`` (overlaps averaged),
    computed on ``device`` (default: where the model is), returned on the CPU."""
    device = device or model_device(model)
    model.eval()
    sums = {v: np.zeros((n, 2)) for v, n in ds.videos.select("video_id", "n_frames").iter_rows()}
    hits = {v: np.zeros(len(s)) for v, s in sums.items()}
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collate,
                        pin_memory=pins(device))
    for batch in loader:
        logits = model(to_device(batch, keys, device)).float().cpu().numpy()
        for b, i in enumerate(batch["index"].tolist()):
            vid, start = ds.items[i]
            m = batch["mask"][b].numpy()
            sums[vid][start:start + m.sum()] += logits[b][m]
            hits[vid][start:start + m.sum()] += 1
    return {v: sums[v] / hits[v][:, None] for v in sums}


def all_negative(gt: np.ndarray) -> dict[str, float]:
    """The official F1 figures of predicting every sample negative (no A/H): the floor a
    model must beat (AVGF1 about 0.446 on the real test frames)."""
    m = bah_metrics(gt, np.tile([1.0, 0.0], (len(gt), 1)))
    return {k: m[k] for k in ("accuracy", "f1_pos", "f1_neg", "avg_f1", "w_f1")}


def evaluate_predictions(ds: WindowDataset, logits: dict[str, np.ndarray]) -> dict[str, Any]:
    """Frame- and video-level official metrics for per-frame logits (with the
    threshold-free AP beside the official one), per participant (mean and std) and
    per demographic group (:mod:`training.reports`)."""
    vids = sorted(logits)
    n = dict(ds.videos.select("video_id", "n_frames").iter_rows())
    gts = {v: ds.labels(v, n[v]).astype(int) for v in vids}
    gt = np.concatenate([gts[v] for v in vids])
    frame = reports.metrics(gt, np.concatenate([logits[v] for v in vids]))
    p = {v: torch.softmax(torch.from_numpy(logits[v]), 1)[:, 1].numpy() for v in vids}
    labels = dict(ds.videos.select("video_id", "global_label").iter_rows())
    vp = np.array([video_probability(p[v]) for v in vids])
    video = reports.metrics(np.array([labels[v] for v in vids]), video_logits(vp))
    pid_of = dict(ds.videos.select("video_id", "participant_id").iter_rows())
    people = ds.reader.store.read_table("participants").select(
        "participant_id", "age_range", "gender")
    demo = {row[0]: row[1:] for row in people.iter_rows()}
    by_group = {name: reports.grouped(gts, logits, {
        v: str(demo.get(pid_of[v], (None, None))[i]) for v in vids})
        for i, name in enumerate(("age_range", "gender"))}
    video_gt = np.array([labels[v] for v in vids])
    return {"frames": int(gt.size), "positive_rate": float(gt.mean()), "frame": frame,
            "videos": len(vids), "video": video,
            "all_negative": {"frame": all_negative(gt), "video": all_negative(video_gt)},
            "per_participant": reports.per_participant(gts, logits, pid_of),
            "by_group": by_group}


def _build(cfg: TrainConfig, sources: list[Source]) -> torch.nn.Module:
    return build_model(cfg.model, {s.modality: s.dim for s in sources}, cfg.hidden)


def fit(model: torch.nn.Module, loader: DataLoader[Any], opt: torch.optim.Optimizer,
        keys: list[str], epochs: int, device: torch.device | None = None
        ) -> Iterator[tuple[int, float]]:
    """Train ``epochs`` epochs on ``device`` (default: where the model is; the sampler
    told each epoch); yield (epoch, loss)."""
    for epoch in range(epochs):
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        yield epoch, train_epoch(model, loader, opt, keys, device)


def train(cfg: TrainConfig, log: Any = print) -> Path:
    """Train ``cfg.model`` on the train split (on ``cfg.device``); evaluate val and test;
    return the run dir."""
    device = torch_device(cfg.device)
    cfg = cfg.model_copy(update={"device": str(device)})  # recorded: the device used
    with device_errors(device):
        return _train(cfg, device, log)


def frame_metrics(ds: WindowDataset, logits: dict[str, np.ndarray]) -> dict[str, Any]:
    """The frame-level official metrics (and threshold-free AP) of per-frame logits, the
    numbers ``evaluate_predictions`` gives as ``frame``."""
    vids = sorted(logits)
    n = dict(ds.videos.select("video_id", "n_frames").iter_rows())
    gt = np.concatenate([ds.labels(v, n[v]).astype(int) for v in vids])
    return reports.metrics(gt, np.concatenate([logits[v] for v in vids]))


def _validation(cfg: TrainConfig, store: Store, sources: list[Source]
                ) -> tuple[WindowDataset | None, str]:
    """The validation windows (as ``evaluate_run_model`` reads them), or None and why
    the run keeps its last epoch instead."""
    if cfg.select == "last":
        return None, "select last"
    try:
        ds = WindowDataset(store, sources, length=cfg.window, hop=cfg.window, split="val",
                           cache_bytes=cfg.cache_mb << 20)
    except ConfigError as exc:
        return None, f"no validation split to select by ({exc.message}): the last epoch is kept"
    if not any(ds.labels(v, n).any() for v, n in
               ds.videos.select("video_id", "n_frames").iter_rows()) \
            and cfg.select == "val_ap_pos":
        return None, "the validation split has no A/H frame (AP undefined): the last epoch is kept"
    return ds, ""


def _epochs(cfg: TrainConfig, model: torch.nn.Module, loader: DataLoader[Any],
            opt: torch.optim.Optimizer, schedule: torch.optim.lr_scheduler.LRScheduler | None,
            val_ds: WindowDataset | None, selector: EpochSelector, keys: list[str],
            device: torch.device, log: Any) -> list[dict[str, Any]]:
    """The epochs of a run: train, step the schedule, score the validation windows,
    offer the epoch to ``selector`` (stopping early when it says so); one history entry
    per epoch."""
    history = []
    t0 = time.perf_counter()
    for epoch, loss in fit(model, loader, opt, keys, cfg.epochs, device):
        entry: dict[str, Any] = {"epoch": epoch, "loss": loss,
                                 "lr": opt.param_groups[0]["lr"]}
        if schedule is not None:
            schedule.step()
        if val_ds is not None:
            val = frame_metrics(val_ds, predict_frames(model, val_ds, keys, device=device))
            entry.update({f"val_{k}": v for k, v in val.items() if k != "confusion"})
        entry["seconds"] = time.perf_counter() - t0
        history.append(entry)
        chosen = selector.offer(entry, model)
        shown = "" if val_ds is None else (
            f", val AP {entry['val_ap_pos']:.4f} AVGF1 {entry['val_avg_f1']:.4f}"
            + (" *" if chosen else ""))
        log(f"epoch {epoch + 1}/{cfg.epochs}: loss {loss:.4f}{shown} "
            f"({time.perf_counter() - t0:.1f} s)")
        if selector.exhausted:
            log(f"early stop: no better {cfg.select} for {cfg.patience} epochs")
            break
    return history


def _train(cfg: TrainConfig, device: torch.device, log: Any) -> Path:
    seed_everything(cfg.seed)
    store = run_store(cfg)
    sources = resolve_sources(store, list(cfg.modalities))
    keys = [s.modality for s in sources]
    train_ds = WindowDataset(store, sources, length=cfg.window, hop=cfg.hop, split="train",
                             cache_bytes=cfg.cache_mb << 20)
    val_ds, fallback = _validation(cfg, store, sources)
    model = _build(cfg, sources).to(device)
    opt = build_optimizer(cfg.optimizer, model.parameters(), lr=cfg.lr,
                          weight_decay=cfg.weight_decay, momentum=cfg.momentum,
                          nesterov=cfg.nesterov)
    schedule = build_schedule(cfg.schedule, opt, epochs=cfg.epochs, step_size=cfg.step_size,
                              gamma=cfg.gamma)
    loader = make_loader(train_ds, cfg, train=True, device=device)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    run = Path(cfg.out) / f"{stamp}-{cfg.model}-{'+'.join(keys)}-s{cfg.seed}"
    access = store.access  # the run holds what the store holds: same modes
    new_dir(run, access)
    selector = EpochSelector("last" if val_ds is None else cfg.select, cfg.patience)
    log(f"device: {device}")
    if fallback and cfg.select != "last":
        log(f"selection: {fallback}")
    history = _epochs(cfg, model, loader, opt, schedule, val_ds, selector, keys, device, log)
    best = selector.best or history[-1]
    model.load_state_dict(selector.state)
    selection = {"rule": selector.rule, "asked": cfg.select, "patience": cfg.patience,
                 "epochs_run": len(history), "reason": fallback or None}
    log(f"selected epoch {best['epoch'] + 1} ({selector.rule})")
    torch.save({"state_dict": selector.state, "config": cfg.model_dump(mode="json"),
                "sources": [s.__dict__ for s in sources]}, run / "model.pt")
    results: dict[str, Any] = {
        "config": cfg.model_dump(mode="json"),
        "feature_sets": {s.modality: {"feature_set": s.feature_set, "array": s.array,
                                      "model_sha256": s.model_sha256} for s in sources},
        "train_windows": len(train_ds), "history": history,
        "selected_epoch": best["epoch"], "selection": selection, "splits": {}}
    (run / "config.json").write_text(json.dumps(results["config"], indent=2))
    for split in ("val", "test"):
        try:
            results["splits"][split] = evaluate_run_model(model, cfg, sources, split, store)
        except ConfigError as exc:  # e.g. a store without that split
            results["splits"][split] = {"error": exc.message}
    (run / "results.json").write_text(json.dumps(results, indent=2))
    access.apply_tree(run)
    return run


def evaluate_run_model(model: torch.nn.Module, cfg: TrainConfig, sources: list[Source],
                       split: str, store: Store | None = None) -> dict[str, Any]:
    """The metrics of ``model`` on ``split`` of ``store`` (default: the run's store)."""
    ds = WindowDataset(store or run_store(cfg), sources, length=cfg.window, hop=cfg.window,
                       split=split, cache_bytes=0)  # read once: a copy would only add one
    keys = [s.modality for s in sources]
    return evaluate_predictions(ds, predict_frames(model, ds, keys))


def load_run(run: Path, store: Path | str | None = None, device: str | None = None
             ) -> tuple[torch.nn.Module, TrainConfig, list[Source]]:
    """The trained model of a run directory on ``device`` (a setting as ``--device``
    takes it; default ``$BAHFS_DEVICE``, else auto), its config (``store`` replaced
    when given; ``device`` the one the model is on) and its sources."""
    where = torch_device(device)
    path = Path(run) / "model.pt"
    if not path.is_file():
        raise NotFoundError("not a run directory (no model.pt)", path=run,
                            expected="a directory written by `bahfs train`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        cfg = TrainConfig(**{**ckpt["config"], **({"store": store} if store else {})})
        sources = [Source(**s) for s in ckpt["sources"]]
        model = _build(cfg, sources)
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise CorruptError(f"unreadable run checkpoint: {exc}", path=path,
                           expected="model.pt as `bahfs train` writes it") from exc
    return model.to(where), cfg.model_copy(update={"device": str(where)}), sources


def evaluate(run: Path, split: str = "test", store: Path | str | None = None,
             device: str | None = None) -> dict[str, Any]:
    """Re-evaluate a saved run on ``split`` on ``device`` (default ``$BAHFS_DEVICE``,
    else auto); writes ``eval_<split>.json`` (with the device used) in the run."""
    model, cfg, sources = load_run(run, store, device)
    opened = run_store(cfg)
    with device_errors(model_device(model)):
        result = {**evaluate_run_model(model, cfg, sources, split, opened),
                  "device": cfg.device}
    (Path(run) / f"eval_{split}.json").write_text(json.dumps(result, indent=2))
    opened.access.apply(Path(run) / f"eval_{split}.json", is_dir=False)
    return result
