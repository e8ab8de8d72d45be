"""torch datasets of fixed-length frame windows read from the store (never the video).

A window never crosses a video boundary: windows start at 0, hop, 2*hop, ... and a
last one is aligned to the video's end so every frame is covered; a video shorter
than the window gives one window padded with zeros (``mask`` marks real frames).

A DataLoader reads a whole batch at once (``WindowDataset.__getitems__``): per
source, the windows come from the dataset's own cache of per-video arrays where the
video is held, else from the store's batched window reader
(:meth:`store.reader.FeatureReader.gather`), one call per source and batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from torch.utils.data import Dataset, Sampler

from store.backend import Store
from store.errors import ConfigError
from store.local import as_store, open_store
from store.reader import FeatureReader
from store.s3 import S3Store
from store.s3_cache import DEFAULT_CACHE_MB, S3Cache, default_cache_dir
from store.s3_objects import is_s3


@dataclass(frozen=True)
class Source:
    """One input modality: which feature set and array feed it, and its width."""

    modality: str
    feature_set: str
    array: str
    dim: int
    model_sha256: str


def resolve_sources(store: Store | Path, modalities: list[str]) -> list[Source]:
    """``face`` (extractor name) or ``face=<feature set or extractor>[:array]``."""
    reader = FeatureReader(store)
    sets = reader.featuresets()
    out = []
    for item in modalities:
        name, _, ref = item.partition("=")
        fs_name, _, array = (ref or name).partition(":")
        fs = reader.resolve(fs_name)
        spec = sets[fs]
        arr = next((a for a in spec.arrays if a.name == (array or spec.arrays[0].name)), None)
        if arr is None or len(arr.shape) != 1:
            raise ConfigError(f"modality {item!r}: no 1-d per-frame array {array!r} in {fs}",
                              expected=str([a.name for a in spec.arrays if len(a.shape) == 1]))
        out.append(Source(name, fs, arr.name, arr.shape[0], spec.model_sha256))
    return out


def open_run_store(location: Path | str, s3_cache: Path | None = None,
                   s3_cache_mb: int = DEFAULT_CACHE_MB) -> Store:
    """The store a run reads, opened once: a folder, or a bucket whose arrays are read
    through the local cache ``s3_cache`` (default under the OS cache folder; none when
    ``s3_cache_mb`` is 0), the cache first pruned of videos no longer published as it
    holds them (store.s3_cache)."""
    if not is_s3(location):
        return as_store(location)
    cache = (S3Cache(s3_cache or default_cache_dir(), s3_cache_mb << 20)
             if s3_cache_mb else None)
    store = open_store(str(location), cache)
    if isinstance(store, S3Store):
        store.prune_cache()
    return store


def window_starts(n_frames: int, length: int, hop: int) -> list[int]:
    """Starts of windows covering ``[0, n_frames)`` without crossing its end."""
    if length <= 0 or hop <= 0:
        raise ConfigError(f"window {length} / hop {hop}", expected="positive integers")
    if n_frames <= length:
        return [0]
    starts = list(range(0, n_frames - length + 1, hop))
    if starts[-1] + length < n_frames:
        starts.append(n_frames - length)
    return starts


# per dataset and process; holds BAH's train split with face + audio + words (about
# 1.2 GB). Datasets read once (evaluation, prediction) pass 0: a cache only adds a copy.
DEFAULT_CACHE_BYTES = 2 << 30


class VideoCache:
    """Per-video feature arrays held in memory (float16, as windows carry them), at
    most ``budget`` bytes. Filled on first use and never evicted: once full, further
    videos are read from the store on every batch. One belongs to one dataset; each
    DataLoader worker process fills its own (a forked worker starts with a copy of
    what its parent held)."""

    def __init__(self, budget: int) -> None:
        if budget < 0:
            raise ConfigError(f"cache budget {budget} bytes", expected="0 or more")
        self.budget, self.used = budget, 0
        self.arrays: dict[tuple[str, str], dict[str, np.ndarray]] = {}

    def held(self, feature_set: str, array: str) -> dict[str, np.ndarray]:
        """The arrays held of one (feature set, array), by video id (read only)."""
        return self.arrays.setdefault((feature_set, array), {})

    def fits(self, nbytes: int) -> bool:
        return self.used + nbytes <= self.budget

    def add(self, feature_set: str, array: str, video_id: str, data: np.ndarray) -> None:
        if not self.fits(data.nbytes):
            raise ConfigError(f"{data.nbytes} bytes over the cache budget",
                              video=video_id, expected=f"at most {self.budget - self.used}")
        self.held(feature_set, array)[video_id] = data
        self.used += data.nbytes


class WindowDataset(Dataset[dict[str, torch.Tensor]]):
    """Windows of ``length`` frames over the videos of ``split`` (or ``video_ids``).

    Only labelled videos by default; ``labelled=False`` also takes the videos whose
    labels the release withholds (for predictions: their labels read as 0 and no
    window of theirs counts as positive). ``cache_bytes`` bounds the in-memory copy
    of per-video features the batch path keeps (0: read the store every batch).
    """

    def __init__(self, store: Store | Path, sources: list[Source], *, length: int, hop: int,
                 split: str | None = None, video_ids: list[str] | None = None,
                 labelled: bool = True, cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.reader = FeatureReader(store)
        self.cache = VideoCache(cache_bytes)
        self.sources, self.length = sources, length
        videos = self.reader.store.read_table("videos")
        if labelled:
            videos = videos.filter(pl.col("global_label").is_not_null())
        self.unlabelled = set(videos.filter(pl.col("global_label").is_null())
                              ["video_id"].to_list())
        if split is not None:
            videos = videos.filter(pl.col("split") == split)
        if video_ids is not None:
            videos = videos.filter(pl.col("video_id").is_in(video_ids))
        present = set.intersection(*(set(self.reader.extracted(s.feature_set))
                                     for s in sources))
        videos = videos.filter(pl.col("video_id").is_in(list(present))).sort("video_id")
        if videos.height == 0:
            raise ConfigError(f"no extracted{' labelled' if labelled else ''} videos for split "
                              f"{split!r}",
                              expected="videos present in every chosen feature set")
        self.videos = videos
        items, pids, positive, real = [], [], [], []
        self.frame_labels: dict[str, np.ndarray] = {}  # per video, as the items read them
        for vid, pid, n in videos.select("video_id", "participant_id", "n_frames").iter_rows():
            labels = self.frame_labels[vid] = self.labels(vid, n)
            for s in window_starts(n, length, hop):
                items.append((vid, s))
                pids.append(pid)
                positive.append(bool(labels[s:s + length].any()))
                real.append(min(length, n - s))
        self.items: list[tuple[str, int]] = items
        self.participants = np.array(pids)
        self.positive = np.array(positive)
        self.real = np.array(real, np.int64)  # real (unpadded) frames per window

    def __len__(self) -> int:
        return len(self.items)

    def labels(self, video_id: str, n_frames: int) -> np.ndarray:
        """Per-frame labels of a video (zeros where the release withholds them)."""
        if video_id in self.unlabelled:
            return np.zeros(n_frames, np.int8)
        return self.reader.labels(video_id)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        vid, start = self.items[i]
        n = self.reader.n_frames(vid)
        stop = min(start + self.length, n)
        out: dict[str, torch.Tensor] = {}
        for s in self.sources:
            x = np.zeros((self.length, s.dim), np.float16)
            x[: stop - start] = self.reader.read_rows(s.feature_set, vid, s.array, start, stop)
            out[s.modality] = torch.from_numpy(x)
        labels = np.zeros(self.length, np.int64)
        labels[: stop - start] = self.labels(vid, n)[start:stop]
        mask = np.zeros(self.length, bool)
        mask[: stop - start] = True
        out["labels"] = torch.from_numpy(labels)
        out["mask"] = torch.from_numpy(mask)
        out["index"] = torch.tensor(i)
        return out

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """A whole batch, collated: the same tensors as stacking ``self[i]`` for each
        index, read per source in one pass (cache, then the store's batched reader)."""
        idx = list(indices)
        items = [self.items[i] for i in idx]
        real = self.real[idx]
        out: dict[str, torch.Tensor] = {}
        for s in self.sources:
            x = np.empty((len(idx), self.length, s.dim), np.float16)
            self._read(s, items, x)
            out[s.modality] = torch.from_numpy(x)
        labels = np.zeros((len(idx), self.length), np.int64)
        for b, (vid, start) in enumerate(items):
            labels[b, : real[b]] = self.frame_labels[vid][start:start + real[b]]
        out["labels"] = torch.from_numpy(labels)
        out["mask"] = torch.from_numpy(np.arange(self.length) < real[:, None])
        out["index"] = torch.tensor(idx, dtype=torch.int64)
        return out

    def _read(self, s: Source, items: list[tuple[str, int]], out: np.ndarray) -> None:
        """Windows of source ``s`` into ``out`` (float16, zero past a video's end)."""
        length, cache, missed = self.length, self.cache, []
        held = cache.held(s.feature_set, s.array)
        for b, (vid, start) in enumerate(items):
            arr = held.get(vid)
            if arr is None:
                n = self.reader.n_frames(vid)
                if not cache.fits(n * s.dim * 2):
                    missed.append(b)
                    continue
                arr = self.reader.read_rows(s.feature_set, vid, s.array, 0, n
                                            ).astype(np.float16, copy=False)
                cache.add(s.feature_set, s.array, vid, arr)
            k = min(length, arr.shape[0] - start)
            out[b, :k] = arr[start:start + k]
            if k < length:
                out[b, k:] = 0
        if len(missed) == len(items):
            self.reader.gather(s.feature_set, s.array, items, length, out, pad=True)
        elif missed:
            out[missed] = self.reader.gather(s.feature_set, s.array,
                                             [items[b] for b in missed], length,
                                             np.empty((len(missed), *out.shape[1:]),
                                                      out.dtype), pad=True)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (into a spawned worker) without the cache's arrays."""
        state = self.__dict__.copy()
        state["cache"] = VideoCache(self.cache.budget)
        return state


class NegativeUndersampler(Sampler[int]):
    """Every window with A/H plus ``ratio`` times as many A/H-free windows, drawn anew
    each epoch (call ``set_epoch``), shuffled: the paper's negative under-sampling."""

    def __init__(self, positive: np.ndarray, ratio: float = 1.0, seed: int = 0) -> None:
        self.pos = np.flatnonzero(positive)
        self.neg = np.flatnonzero(~positive)
        self.ratio, self.seed, self.epoch = ratio, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.pos) + min(len(self.neg), round(self.ratio * max(len(self.pos), 1)))

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng((self.seed, self.epoch))
        k = len(self) - len(self.pos)
        idx = np.concatenate([self.pos, rng.choice(self.neg, size=k, replace=False)])
        return iter(rng.permutation(idx).tolist())


class ParticipantBalancedSampler(Sampler[int]):
    """Windows drawn so that each participant is equally likely (with replacement)."""

    def __init__(self, participants: np.ndarray, num_samples: int | None = None,
                 seed: int = 0) -> None:
        _, inverse, counts = np.unique(participants, return_inverse=True, return_counts=True)
        self.weights = 1.0 / counts[inverse]
        self.weights /= self.weights.sum()
        self.n = num_samples or len(participants)
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng((self.seed, self.epoch))
        return iter(rng.choice(len(self.weights), size=self.n, p=self.weights).tolist())


def participant_split(store: Path, participant_id: str, fractions: tuple[float, ...] =
                      (0.6, 0.2, 0.2), seed: int = 0) -> dict[str, list[str]]:
    """Personalisation protocol: a train/val/test split of one participant's videos,
    stratified by the video label so each part gets both classes where it can."""
    videos = as_store(store).read_table("videos").filter(pl.col("participant_id") == participant_id)
    if videos.height < len(fractions):
        raise ConfigError(f"participant {participant_id!r} has {videos.height} videos",
                          expected=f"at least {len(fractions)} for a target split")
    rng = np.random.default_rng(seed)
    names = ("train", "val", "test")[: len(fractions)]
    parts: dict[str, list[str]] = {n: [] for n in names}
    classes: dict[str, set[int]] = {n: set() for n in names}
    for label in (1, 0):  # the rarer class is dealt first
        vids = videos.filter(pl.col("global_label") == label)["video_id"].to_list()
        for vid in (vids[i] for i in rng.permutation(len(vids))):
            # a part lacking this class first, then an empty part, then the least filled
            k = min(range(len(names)), key=lambda k: (
                label in classes[names[k]], bool(parts[names[k]]),
                len(parts[names[k]]) / fractions[k], k))
            parts[names[k]].append(vid)
            classes[names[k]].add(label)
    return parts


def collate(batch: list[dict[str, torch.Tensor]] | dict[str, torch.Tensor]) -> dict[str, Any]:
    """Items stacked into a batch; a batch ``__getitems__`` already collated passes as is."""
    if isinstance(batch, dict):
        return batch
    return {k: torch.stack([b[k] for b in batch]) for k in batch[0]}
