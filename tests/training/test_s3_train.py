"""Training from a store in a bucket (the moto server on 127.0.0.1,
``tests/store/s3_server.py``): the same metrics as training from the folder it was
copied from, and epochs after the first read the local cache, not the bucket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from bahfs.cli import app
from bahfs.cli.models import DEFAULT_CACHE_MB as CLI_DEFAULT
from store.copy import copy_store
from store.s3 import S3Store
from store.s3_cache import DEFAULT_CACHE_MB, S3Cache
from tests.store import s3_server
from training.data import WindowDataset, resolve_sources
from training.run import TrainConfig, make_loader

runner = CliRunner()


@pytest.fixture(scope="module")
def bucket_copy(synth: Path) -> Iterator[str]:
    """The planted store copied into a fresh bucket, once (read-only), the AWS
    settings in this process's environment as a user sets them."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in s3_server.env().items():
            patch.setenv(name, value)
        url = f"s3://{s3_server.new_bucket()}/store"
        copy_store(synth, url)
        yield url


def _results(out: Path) -> dict[str, object]:
    run = next(out.iterdir())
    results: dict[str, object] = json.loads((run / "results.json").read_text())
    return results


def test_train_from_a_bucket_gives_the_metrics_of_the_folder(
        synth: Path, bucket_copy: str, tmp_path: Path) -> None:
    args = ["--model", "mlp", "--modalities", "face", "--epochs", "2", "--seed", "3"]
    local = runner.invoke(app, ["train", str(synth), *args, "--out", str(tmp_path / "a")])
    assert local.exit_code == 0, local.output
    remote = runner.invoke(app, ["train", bucket_copy, *args, "--out", str(tmp_path / "b"),
                                 "--s3-cache", str(tmp_path / "cache")])
    assert remote.exit_code == 0, remote.output
    want, got = _results(tmp_path / "a"), _results(tmp_path / "b")
    assert got["splits"] == want["splits"]
    assert [h["loss"] for h in got["history"]] == [h["loss"] for h in want["history"]]  # type: ignore[attr-defined]
    assert got["config"]["store"] == bucket_copy  # type: ignore[index]
    assert any((tmp_path / "cache" / "entries").iterdir())
    run = next((tmp_path / "b").iterdir())
    again = runner.invoke(app, ["evaluate", str(run), "--split", "test"])
    assert again.exit_code == 0, again.output
    evaluated = json.loads((run / "eval_test.json").read_text())
    assert evaluated["frame"] == want["splits"]["test"]["frame"]  # type: ignore[index]


def test_later_epochs_read_the_cache_not_the_bucket(bucket_copy: str, tmp_path: Path) -> None:
    assert CLI_DEFAULT == DEFAULT_CACHE_MB
    cache = S3Cache(tmp_path / "cache", 1 << 30)
    store = S3Store.open(bucket_copy, cache)
    ds = WindowDataset(store, resolve_sources(store, ["face"]), length=96, hop=48,
                       split="train", cache_bytes=0)  # no in-memory copy: the store each batch
    every = TrainConfig(store=bucket_copy, modalities=("face",), sampler="all")
    loader = make_loader(ds, every, train=True)
    for epoch in range(2):
        torch.manual_seed(epoch)  # each epoch its own shuffle
        before = store.bucket.counts["get_object"]
        batches = sum(1 for _ in loader)
        gets = store.bucket.counts["get_object"] - before
        n = ds.videos.height
        if epoch == 0:  # each video's face array fetched whole: a GET of it and its
            # zarr.json (and the videos table, read once by the reader)
            assert cache.stats.fetched == n and 2 * n <= gets <= 2 * n + 1
        else:
            assert batches > 0 and gets == 0 and cache.stats.fetched == n
    # the next run on this host: a new store object, the same folder, nothing fetched
    later = S3Store.open(bucket_copy, S3Cache(tmp_path / "cache", 1 << 30))
    ds = WindowDataset(later, ds.sources, length=96, hop=48, split="train", cache_bytes=0)
    sum(1 for _ in make_loader(ds, every, train=True))
    assert later.cache is not None and later.cache.stats.fetched == 0
    assert later.cache.stats.hits == ds.videos.height
