"""What a purge reaches beyond the tables and arrays: the lock files named after the
participant's videos, and the runs whose log named them (reported, for the Prefect
server, which the purge cannot reach)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from store.ingest import ingest
from store.locks import LOCKS, video_lock
from store.purge import purge_participant
from store.tables import read_table, write_table


def test_purge_removes_lock_files_and_names_the_runs(sample_release: Path,
                                                     tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest(sample_release, store)
    videos = read_table(store, "videos")
    pid = videos["participant_id"][0]
    theirs = videos.filter(pl.col("participant_id") == pid)["video_id"].to_list()
    other = videos.filter(pl.col("participant_id") != pid)["video_id"][0]
    for vid in [*theirs, other]:
        with video_lock(store, vid) as held:
            assert held
    row = {"started_at": "t", "finished_at": "t", "feature_sets": "[]", "batches": 0,
           "extracted": 1, "skipped": 0, "busy": 0, "quarantined": 0, "frames": 1}
    write_table(store, "extract_runs", pl.DataFrame([
        {**row, "run_id": "run-theirs", "detail": json.dumps({"extracted": [theirs[0]]})},
        {**row, "run_id": "run-other", "detail": json.dumps({"extracted": [other]})}]))
    report = purge_participant(store, pid)
    assert report.prefect_runs == ("run-theirs",)
    assert report.lock_files_removed == len(theirs)
    left = sorted(p.name for p in (store / LOCKS).iterdir())
    assert left == sorted(["tables.lock", f"video-{other}.lock"])
    assert not any(pid in p.name for p in store.rglob("*"))
