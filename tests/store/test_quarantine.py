"""Reversible quarantine through the command line: a video quarantined for a corrupt
file, once the file is replaced and released, is extracted by the next run; a video
quarantined at ingest is probed again by the next ingest of its batch; each release
is audited without personal data."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from bahfs.cli import app
from flows.batches import find_batches, ingest_batch, pending_batches
from flows.engine import extract_release
from store.consent import subject_hash
from store.ingest import ingest
from store.release import codebook as cb
from store.tables import read_table, read_table_or_empty
from store.verify import verify_store

runner = CliRunner()


def _own_videos(sample_release: Path, mutable_release: Path) -> None:
    videos = mutable_release / cb.VIDEOS_DIR
    videos.unlink()
    shutil.copytree(sample_release / cb.VIDEOS_DIR, videos)


def _corrupt_middle(path: Path, n: int = 20_000) -> None:
    data = bytearray(path.read_bytes())
    mid = (data.find(b"mdat") + len(data)) // 2
    data[mid:mid + n] = np.random.default_rng(0).bytes(n)
    path.write_bytes(bytes(data))


def test_a_corrupt_file_replaced_and_released_is_extracted(
        sample_release: Path, mutable_release: Path, tmp_path: Path) -> None:
    _own_videos(sample_release, mutable_release)
    store = tmp_path / "store"
    ingest(mutable_release, store)
    vid, pid, rel = read_table(store, "videos").select("video_id", "participant_id",
                                                      "path").row(0)
    _corrupt_middle(mutable_release / rel)  # after ingest: probed fine, now broken
    first = extract_release(store, ("logmel",))
    assert list(first.quarantined) == [vid]

    listed = runner.invoke(app, ["quarantine", "list", str(store)])
    assert listed.exit_code == 0, listed.output
    line = next(ln for ln in listed.output.splitlines() if ln.startswith(vid))
    assert f"\t{pid}\textract\tundecodable\t" in line and f"file: {mutable_release / rel}" in line

    shutil.copy(sample_release / rel, mutable_release / rel)  # the file replaced
    assert runner.invoke(app, ["quarantine", "release", str(store), "nope"]).exit_code == 2
    released = runner.invoke(app, ["quarantine", "release", str(store), vid])
    assert released.exit_code == 0, released.output
    assert f"released {vid} (quarantined at extract)" in released.output
    assert read_table_or_empty(store, "quarantine").height == 0

    second = extract_release(store, ("logmel",))
    assert second.extracted == [vid] and not second.quarantined
    assert [p for p in verify_store(store) if p.severity == "error"] == []
    audit = read_table(store, "audit").filter(read_table(store, "audit")["action"]
                                             == "quarantine-release")
    assert audit.height == 1 and audit["subject_sha256"][0] == subject_hash(pid)
    row = json.dumps(audit.row(0))
    assert pid not in row and vid not in row  # no personal data, no ids in clear
    assert json.loads(audit["detail"][0])["stage"] == "extract"


def test_a_video_released_from_ingest_is_probed_again_with_its_batch(
        sample_release: Path, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    batch_dir = inbox / "batch-1"
    shutil.copytree(sample_release, batch_dir)
    store = tmp_path / "store"
    rels = sorted(p.relative_to(batch_dir) for p in (batch_dir / cb.VIDEOS_DIR).rglob("*.mp4"))
    ingest(batch_dir, tmp_path / "scratch")  # which videos are consented
    rel = Path(read_table(tmp_path / "scratch", "videos")["path"][0])
    assert rel in rels
    good = (batch_dir / rel).read_bytes()
    (batch_dir / rel).write_bytes(good[: len(good) // 3])  # truncated
    (batch,) = find_batches(inbox)
    ingest_batch(batch, store)
    q = read_table(store, "quarantine")
    assert q["stage"].to_list() == ["ingest"] and q["path"][0] == str(rel)
    vid = q["video_id"][0]
    assert not pending_batches(store, find_batches(inbox))

    # a misjudged fault: the file was fine after all (restored with its old times)
    stat = (batch_dir / rel).stat()
    (batch_dir / rel).write_bytes(good)
    os.utime(batch_dir / rel, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    released = runner.invoke(app, ["quarantine", "release", str(store), "--stage", "ingest"])
    assert released.exit_code == 0, released.output
    assert "batch batch-1 will be ingested again" in released.output
    (again,) = pending_batches(store, find_batches(inbox))
    ingest_batch(again, store)
    assert vid in read_table(store, "videos")["video_id"].to_list()
    assert read_table_or_empty(store, "quarantine").height == 0
