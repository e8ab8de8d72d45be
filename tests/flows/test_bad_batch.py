"""A batch that mixes bad videos with good ones: the good ones land, every bad one is
quarantined (at ingest when it cannot be probed, at extraction when it cannot be
decoded) with its reason and its file, and the store stays consistent."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from bahfs.sample.generate import SampleConfig, generate
from flows.engine import extract_release
from store.ingest import ingest
from store.tables import read_table
from store.verify import verify_store


def _corrupt_middle(path: Path, n: int = 20_000) -> None:
    data = bytearray(path.read_bytes())
    mid = (data.find(b"mdat") + len(data)) // 2
    data[mid:mid + n] = np.random.default_rng(0).bytes(n)
    path.write_bytes(bytes(data))


def _keep_audio_only(path: Path) -> None:
    tmp = path.with_name("audio-only.tmp")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(path), "-vn", "-c:a", "copy",
                    "-f", "mp4", str(tmp)], check=True)
    tmp.replace(path)


@pytest.mark.slow
def test_bad_videos_are_quarantined_and_the_good_ones_land(tmp_path: Path) -> None:
    release = tmp_path / "release"
    generate(release, SampleConfig(participants=8, seed=11, max_questions=1, max_seconds=14.0,
                                   workers=2))
    ingest(release, tmp_path / "scratch")  # which videos are consented
    rels = sorted(read_table(tmp_path / "scratch", "videos")["path"].to_list())
    files = [release / r for r in rels]
    assert len(files) >= 6
    empty, cut, corrupt, audio_only = files[:4]
    empty.write_bytes(b"")  # before ingest: these two cannot be probed
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    store = tmp_path / "store"
    report = ingest(release, store)
    videos = read_table(store, "videos")
    vid_of = dict(read_table(tmp_path / "scratch", "videos").select("path", "video_id")
                  .iter_rows())
    at_ingest = {vid_of[rels[0]]: "empty (0 bytes)", vid_of[rels[1]]: "truncated"}
    assert set(report.quarantined) == set(at_ingest)
    for vid, needle in at_ingest.items():
        assert needle in report.quarantined[vid]

    _corrupt_middle(corrupt)  # after ingest: probed fine, now broken
    _keep_audio_only(audio_only)
    out = extract_release(store, ("logmel",))
    at_extract = {vid_of[rels[2]]: "decod", vid_of[rels[3]]: "no video stream"}
    assert set(out.quarantined) == set(at_extract)
    for vid, needle in at_extract.items():
        assert needle in out.quarantined[vid], out.quarantined[vid]
    good = set(videos["video_id"].to_list()) - set(at_extract)
    assert set(out.extracted) == good and len(good) >= 2

    q = read_table(store, "quarantine")
    assert sorted(q["stage"].to_list()) == ["extract", "extract", "ingest", "ingest"]
    assert sorted(q["path"].to_list()) == rels[:4]  # each row names its file
    landed = read_table(store, "extracted")
    assert set(landed["video_id"].to_list()) == good
    n = dict(videos.select("video_id", "n_frames").iter_rows())
    assert all(n[v] == f for v, f in landed.select("video_id", "n_frames").iter_rows())
    assert [p for p in verify_store(store) if p.severity == "error"] == []
