"""The input videos of a store in a bucket: ingest uploads them once, a worker
decodes a copy it fetched (removed after), a purge deletes them, verify and copy
know them. A folder store keeps none: its workers read the recorded path."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from bahfs.cli import app
from store.ingest import upload_sources
from store.layout import source_key
from store.local import LocalStore
from store.purge import purge_participant
from store.s3 import S3Store
from store.s3_objects import S3Address
from store.verify import verify_store
from tests.store import s3_server

runner = CliRunner()


def _sources(store: S3Store) -> dict[str, int]:
    return dict(store.bucket.listing("sources/"))


def test_ingest_uploads_each_video_once_and_a_purge_deletes_them(
        sample_release: Path, tmp_path: Path) -> None:
    bucket = s3_server.new_bucket()
    result = runner.invoke(app, ["ingest", str(sample_release), f"s3://{bucket}/store"],
                           env=s3_server.env())
    assert result.exit_code == 0, result.output
    store = S3Store(S3Address(bucket, "store"), s3_server.config())
    videos = store.read_table("videos")
    want = {source_key(pid, vid, Path(rel).suffix): (Path(src) / rel).stat().st_size
            for pid, vid, src, rel in videos.select(
                "participant_id", "video_id", "source", "path").iter_rows()}
    assert want and _sources(store) == want
    assert upload_sources(store, videos) == 0  # a rerun uploads nothing twice
    assert not verify_store(store)  # sources/ is no orphan

    pid, vid, src, rel = videos.select(
        "participant_id", "video_id", "source", "path").row(0)
    recorded = Path(src) / rel
    with store.source_file(pid, vid, recorded) as got:
        assert got != recorded and got.read_bytes() == recorded.read_bytes()
    assert not got.exists() and not got.parent.exists()  # the worker's copy removed

    purge_participant(store, pid)
    assert not [k for k in _sources(store) if k.startswith(f"sources/{pid}/")]
    assert _sources(store)  # the others' stay
    assert not verify_store(store)


def test_a_folder_store_keeps_no_copy(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    video = tmp_path / "v.mp4"
    video.write_bytes(b"not really a video")
    assert store.put_source("p1", "p1__v", video) is False
    with store.source_file("p1", "p1__v", video) as got:
        assert got == video
    assert video.exists() and not (tmp_path / "store" / "sources").exists()


def test_a_bucket_without_the_source_falls_back_to_the_recorded_path(tmp_path: Path) -> None:
    store = s3_server.new_store()
    video = tmp_path / "v.mp4"
    video.write_bytes(b"bytes")
    with store.source_file("p1", "p1__v", video) as got:
        assert got == video
    assert store.put_source("p1", "p1__v", video) is True
    assert store.put_source("p1", "p1__v", video) is False  # same size: kept
    video.write_bytes(b"other bytes")
    assert store.put_source("p1", "p1__v", video) is True  # changed: uploaded again
    with store.source_file("p1", "p1__v", video) as got:
        assert got != video and got.read_bytes() == b"other bytes"
