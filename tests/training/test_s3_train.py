"""Training from a store in a bucket (the moto server on 127.0.0.1,
``tests/store/s3_server.py``, the planted store copied there by the ``synth_bucket``
fixture): the same metrics as training from the folder it was copied from, and epochs
after the first read the local cache, not the bucket; the read-side commands on it."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from bahfs.cli import app
from bahfs.cli.models import DEFAULT_CACHE_MB as CLI_DEFAULT
from store.s3 import S3Store
from store.s3_cache import DEFAULT_CACHE_MB, S3Cache
from training.data import WindowDataset, resolve_sources
from training.run import TrainConfig, make_loader

runner = CliRunner()


def _results(out: Path) -> dict[str, object]:
    run = next(out.iterdir())
    results: dict[str, object] = json.loads((run / "results.json").read_text())
    return results


def test_train_from_a_bucket_gives_the_metrics_of_the_folder(
        synth: Path, synth_bucket: str, tmp_path: Path) -> None:
    args = ["--model", "mlp", "--modalities", "face", "--epochs", "2", "--seed", "3"]
    local = runner.invoke(app, ["train", str(synth), *args, "--out", str(tmp_path / "a")])
    assert local.exit_code == 0, local.output
    remote = runner.invoke(app, ["train", synth_bucket, *args, "--out", str(tmp_path / "b"),
                                 "--s3-cache", str(tmp_path / "cache")])
    assert remote.exit_code == 0, remote.output
    want, got = _results(tmp_path / "a"), _results(tmp_path / "b")
    assert got["splits"] == want["splits"]
    assert [h["loss"] for h in got["history"]] == [h["loss"] for h in want["history"]]  # type: ignore[attr-defined]
    assert got["config"]["store"] == synth_bucket  # type: ignore[index]
    assert any((tmp_path / "cache" / "entries").iterdir())
    run = next((tmp_path / "b").iterdir())
    again = runner.invoke(app, ["evaluate", str(run), "--split", "test"])
    assert again.exit_code == 0, again.output
    evaluated = json.loads((run / "eval_test.json").read_text())
    assert evaluated["frame"] == want["splits"]["test"]["frame"]  # type: ignore[index]


def test_later_epochs_read_the_cache_not_the_bucket(synth_bucket: str, tmp_path: Path) -> None:
    assert CLI_DEFAULT == DEFAULT_CACHE_MB
    cache = S3Cache(tmp_path / "cache", 1 << 30)
    store = S3Store.open(synth_bucket, cache)
    ds = WindowDataset(store, resolve_sources(store, ["face"]), length=96, hop=48,
                       split="train", cache_bytes=0)  # no in-memory copy: the store each batch
    every = TrainConfig(store=synth_bucket, modalities=("face",), sampler="all")
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
    later = S3Store.open(synth_bucket, S3Cache(tmp_path / "cache", 1 << 30))
    ds = WindowDataset(later, ds.sources, length=96, hop=48, split="train", cache_bytes=0)
    sum(1 for _ in make_loader(ds, every, train=True))
    assert later.cache is not None and later.cache.stats.fetched == 0
    assert later.cache.stats.hits == ds.videos.height


def test_the_read_side_commands_take_a_bucket(synth: Path, synth_bucket: str,
                                              tmp_path: Path) -> None:
    local = runner.invoke(app, ["status", str(synth), "--json"])
    remote = runner.invoke(app, ["status", synth_bucket, "--json"])
    assert local.exit_code == 0 and remote.exit_code == 0, remote.output
    want, got = json.loads(local.output), json.loads(remote.output)
    assert got["store"] == synth_bucket and got["size_bytes"] > 0
    for key in ("videos", "participants", "feature_sets", "releases"):
        assert got[key] == want[key]
    shown = runner.invoke(app, ["status", synth_bucket])
    assert shown.exit_code == 0 and "bucket's policy" in shown.output
    exported = runner.invoke(app, ["export-baseline", synth_bucket, str(tmp_path / "out"),
                                   "--source", "face=face"])
    assert exported.exit_code == 0, exported.output
    baseline = runner.invoke(app, ["export-baseline", str(synth), str(tmp_path / "want"),
                                   "--source", "face=face"])
    assert baseline.exit_code == 0, baseline.output
    files = sorted(p.relative_to(tmp_path / "want") for p in (tmp_path / "want").rglob("*.npy"))
    assert files and files == sorted(p.relative_to(tmp_path / "out")
                                     for p in (tmp_path / "out").rglob("*.npy"))
    assert (tmp_path / "out" / files[0]).read_bytes() == (tmp_path / "want" / files[0]
                                                          ).read_bytes()
    vid = files[0].stem
    page = runner.invoke(app, ["review", synth_bucket, vid, "--out",
                               str(tmp_path / "page.html"), "--thumbs", "none"])
    assert page.exit_code == 0, page.output
    assert vid in (tmp_path / "page.html").read_text()
    for args in (["stats", synth_bucket], ["cues", "evaluate", synth_bucket,
                                            "--feature-set", "face"]):
        refused = runner.invoke(app, args)  # their files would go into STORE/plots
        assert refused.exit_code == 2 and "local folder" in refused.output, refused.output
