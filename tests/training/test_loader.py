"""The batch path of WindowDataset (what DataLoaders read): the same tensors as the
item path, in the sampler's order, with or without its per-video cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler

from store.errors import ConfigError
from training.data import NegativeUndersampler, WindowDataset, collate, resolve_sources
from training.run import TrainConfig, make_loader


def _same(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert got.keys() == want.keys()
    for k in want:
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape, k
        assert torch.equal(got[k], want[k]), k


def _dataset(store: Path, cache_bytes: int, length: int = 96) -> WindowDataset:
    return WindowDataset(store, resolve_sources(store, ["face", "audio"]), length=length,
                         hop=40, split="train", cache_bytes=cache_bytes)


@pytest.mark.parametrize("cache_bytes", [0, 30_000, 1 << 30])
def test_batches_equal_the_item_path(synth: Path, cache_bytes: int) -> None:
    items = _dataset(synth, 0, length=160)  # the reference: read item by item
    ds = _dataset(synth, cache_bytes, length=160)
    n = dict(ds.videos.select("video_id", "n_frames").iter_rows())
    padded = [i for i, (v, _) in enumerate(ds.items) if n[v] < 160]
    assert padded, "the store should hold videos shorter than the window"
    rng = np.random.default_rng(0)
    for _ in range(2):  # the second pass reads what the first put in the cache
        for idx in [[*padded, 0, len(ds) - 1], rng.permutation(len(ds))[:50].tolist(),
                    list(range(len(ds)))]:
            _same(ds.__getitems__(idx), collate([items[i] for i in idx]))
    assert ds.cache.used <= cache_bytes
    held = sum(len(h) for h in ds.cache.arrays.values())
    if cache_bytes == 30_000:  # part held, the rest read from the store each batch
        assert 0 < held < 2 * ds.videos.height
    if cache_bytes == 0:
        assert held == 0


def test_padding_and_masks_at_video_ends(synth: Path) -> None:
    ds = _dataset(synth, 1 << 30, length=160)
    n = dict(ds.videos.select("video_id", "n_frames").iter_rows())
    last = [i for i in range(len(ds)) if i + 1 == len(ds) or ds.items[i + 1][0] != ds.items[i][0]]
    batch = ds.__getitems__(last)
    for b, i in enumerate(last):
        vid, start = ds.items[i]
        real = min(160, n[vid])
        assert start + real == n[vid] and int(batch["mask"][b].sum()) == real
        assert bool(batch["mask"][b, :real].all())
        assert not batch["face"][b, real:].any() and not batch["labels"][b, real:].any()
        want = ds.reader.read_rows(ds.sources[0].feature_set, vid, "embedding", start, n[vid])
        np.testing.assert_array_equal(batch["face"][b, :real].numpy(), want)


def test_train_loader_keeps_the_sampler_order(synth: Path) -> None:
    ds = _dataset(synth, 1 << 30)
    items = _dataset(synth, 0)
    loader = make_loader(ds, TrainConfig(store=synth, batch_size=16, undersample_ratio=2.0),
                         train=True)
    assert isinstance(loader.sampler, NegativeUndersampler)
    for epoch in (0, 1):
        loader.sampler.set_epoch(epoch)
        want = list(BatchSampler(loader.sampler, 16, drop_last=False))
        got = list(loader)
        assert [b["index"].tolist() for b in got] == want
        for batch, idx in zip(got, want, strict=True):
            _same(batch, collate([items[i] for i in idx]))
    assert want != list(BatchSampler(NegativeUndersampler(ds.positive, 2.0, 0), 16, False))


def test_negative_cache_budget_is_refused(synth: Path) -> None:
    with pytest.raises(ConfigError, match="cache budget"):
        _dataset(synth, -1)
