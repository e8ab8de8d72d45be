"""``s3://`` where a store is named on the command line, against the moto server on
127.0.0.1 (``tests/store/s3_server.py``): ``bahfs verify`` and ``bahfs copy`` reach
the bucket; the commands that work on a local folder refuse it, and no local folder
named ``s3:`` appears."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from bahfs.cli import app
from store.backend import Store
from store.features import FeatureSetSpec
from store.local import LocalStore, as_store
from store.reader import FeatureReader
from store.s3 import S3Store
from store.s3_objects import S3Address, S3Config
from store.schema import INGEST_TABLES, empty
from store.writer import FeatureWriter
from tests.store import s3_server
from tests.store.test_contract import FACE, VIDEOS, VOICE, features, videos_table

runner = CliRunner()


def fill(store: Store, specs: tuple[FeatureSetSpec, ...] = (FACE, VOICE),
         videos: int = len(VIDEOS)) -> None:
    """A valid store: every ingest table (empty but ``videos``) and some features."""
    for table in INGEST_TABLES:
        store.write_table(table, empty(table))
    store.write_table("videos", videos_table(VIDEOS))
    writer = FeatureWriter(store)
    for spec in specs:
        for vid, pid, n in VIDEOS[:videos]:
            writer.write(features(spec, vid, pid, n))


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_verify_reads_a_bucket_and_makes_no_s3_folder(in_tmp: Path) -> None:
    store = s3_server.new_store()
    fill(store, (FACE,), videos=1)
    url = f"{store.location}"
    result = runner.invoke(app, ["verify", url], env=s3_server.env())
    assert result.exit_code == 0, result.output
    assert "store is valid: 1 feature sets" in result.output
    missing = runner.invoke(app, ["verify", f"s3://{store.bucket.address.bucket}/nothing"],
                            env=s3_server.env())
    assert missing.exit_code == 2 and "no store at" in missing.output
    local_only = runner.invoke(app, ["zeroshot", "export", url, "--out", "prompts"],
                               env=s3_server.env())
    assert local_only.exit_code == 2 and "local folder" in local_only.output
    assert list(in_tmp.iterdir()) == []  # no `s3:` folder, nothing else


def test_no_secret_in_a_pickle_or_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    store = as_store("s3://some-bucket/store")
    assert store.location == "s3://some-bucket/store"
    assert b"testing-secret" not in pickle.dumps(store)
    assert "testing-secret" not in repr(store) + repr(store.bucket.config)  # type: ignore[attr-defined]


def test_copy_round_trips_local_to_s3_to_local(tmp_path: Path) -> None:
    src = LocalStore(tmp_path / "src")
    fill(src)
    vid, pid, _ = VIDEOS[0]
    (tmp_path / "release").mkdir()
    (tmp_path / "release" / "v.mp4").write_bytes(b"a video")  # the others unreadable
    first = pl.col("video_id") == vid
    src.write_table("videos", src.read_table("videos").with_columns(
        pl.when(first).then(pl.lit(str(tmp_path / "release"))).otherwise("source")
        .alias("source"), pl.when(first).then(pl.lit("v.mp4")).otherwise("path").alias("path")))
    url = f"s3://{s3_server.new_bucket()}/copied"
    there = runner.invoke(app, ["copy", str(src.root), url], env=s3_server.env())
    assert there.exit_code == 0, there.output
    bucket = S3Store(S3Address.parse(url), s3_server.config()).bucket
    assert [k for k, _ in bucket.listing("sources/")] == [f"sources/{pid}/{vid}.mp4"]
    back = runner.invoke(app, ["copy", url, str(tmp_path / "back")], env=s3_server.env())
    assert back.exit_code == 0, back.output
    assert "both stores are valid" in back.output
    dst = LocalStore(tmp_path / "back")
    assert not (dst.root / "sources").exists()  # a folder store keeps no videos
    assert dst.read_table("videos").equals(src.read_table("videos"))
    assert dst.feature_sets() == src.feature_sets()
    a, b = FeatureReader(src), FeatureReader(dst)
    for spec in (FACE, VOICE):
        for vid, _, _ in VIDEOS:
            got, want = b.video(spec.id, vid), a.video(spec.id, vid)
            assert got.keys() == want.keys()
            for name in want:
                np.testing.assert_array_equal(got[name], want[name])
    again = runner.invoke(app, ["copy", str(src.root), url], env=s3_server.env())
    assert again.exit_code == 2 and "already holds a store" in again.output


def test_ingest_writes_its_tables_into_a_bucket(sample_release: Path, in_tmp: Path) -> None:
    bucket = s3_server.new_bucket()
    result = runner.invoke(app, ["ingest", str(sample_release), f"s3://{bucket}/store"],
                           env=s3_server.env())
    assert result.exit_code == 0, result.output
    assert f"into s3://{bucket}/store" in result.output
    store = S3Store(S3Address(bucket, "store"), s3_server.config())
    assert store.read_table("videos").height and store.read_manifest()["videos"]
    store.bucket.put("elsewhere/file.bin", b"x")  # a prefix holding something else
    refused = runner.invoke(app, ["ingest", str(sample_release),
                                  f"s3://{bucket}/store/elsewhere"], env=s3_server.env())
    assert refused.exit_code == 2 and "holds objects but no bahfs store" in refused.output
    assert list(in_tmp.iterdir()) == []


def test_folder_only_commands_refuse_a_bucket(in_tmp: Path) -> None:
    url = f"s3://{s3_server.new_bucket()}/store"
    for args in (["extract-video", "clip.mp4", "--out", url],
                 ["access", url, "--scope", "owner"], ["access", url]):
        result = runner.invoke(app, args, env=s3_server.env())
        assert result.exit_code == 2 and "is a bucket" in result.output, (args, result.output)
    assert list(in_tmp.iterdir()) == []  # no `s3:` folder


def test_an_unreachable_object_store_stops_a_run() -> None:
    import socket

    from store.errors import ObjectStoreError
    from store.failures import Where, classify

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gone = S3Store(S3Address("some-bucket", "store"),
                   S3Config(f"http://127.0.0.1:{port}", "us-east-1", {}))
    with pytest.raises(ObjectStoreError) as err:
        gone.read_table("videos")
    fault = classify(err.value, Where(store=gone.location))
    assert (fault.owner, fault.kind, fault.stop) == ("machine", "store unreachable", True)
    assert "object store unreachable" in fault.message
