"""End to end through real Prefect: a local server, `prefect deploy` from prefect.yaml,
the scheduled `pickup` deployment and `prefect deployment run extract/extract`, a
process worker, real models on Dask, and the store checked after every run. (The
schedule's own runs are due 10 minutes out; the test checks the server queued them
and runs the same deployment at once.)"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from bahfs.sample.generate import SampleConfig, generate
from extractors import DEFAULT_EXTRACTORS
from flows.job import feature_set_ids
from flows.local import LocalPrefect
from store.layout import features_root
from store.reader import FeatureReader
from store.release import codebook as cb
from store.release.ids import VIDEO_FILE_RE
from store.tables import read_table

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _arrived_long_ago(folder: Path) -> None:
    """Backdate a batch, as if its copy had finished long ago (pickup waits 120 s)."""
    old = time.time() - 3600
    for p in [folder, *folder.rglob("*")]:
        os.utime(p, (old, old))


def _wait_for_scheduled_run(prefect: LocalPrefect, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs: list[dict[str, Any]] = json.loads(
            prefect.cli("flow-run", "ls", "--state-type", "SCHEDULED", "--output", "json"))
        if runs:
            return
        time.sleep(1)
    raise AssertionError("the pickup schedule created no flow run")


def _run_worker_once(prefect: LocalPrefect) -> None:
    assert prefect.start_worker(run_once=True).wait(timeout=600) == 0


def test_schedule_and_deployment_runs_extract_only_what_is_new(tmp_path: Path) -> None:
    inbox, store = tmp_path / "inbox", tmp_path / "store"
    # batch-001: 82553, 82554 consent; 82555 declines (the generator always shows one)
    # 8 fps: the real models on every frame, a third of the frames of 24 fps
    generate(inbox / "batch-001", SampleConfig(participants=3, seed=3, max_questions=2,
                                               max_seconds=14.0, fps=8.0, workers=2))
    corrupt = sorted((inbox / "batch-001" / cb.VIDEOS_DIR / "82554").rglob("*.mp4"))[0]
    corrupt.write_bytes(corrupt.read_bytes()[: corrupt.stat().st_size // 3])  # truncated
    _arrived_long_ago(inbox / "batch-001")
    env = {"BAHFS_INBOX": str(inbox), "BAHFS_STORE": str(store),  # the worker's defaults
           "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2"}

    with LocalPrefect(tmp_path / "prefect", env=env) as prefect:
        prefect.deploy("extract", "pickup")
        listed = prefect.cli("deployment", "ls")
        assert "extract/extract" in listed and "extract/pickup" in listed

        # 1. the pickup schedule is live (the server has queued its runs, 10 min apart);
        #    run the pickup deployment now, as its schedule does, over batch-001
        _wait_for_scheduled_run(prefect)
        prefect.run("extract/pickup", {}, watch=False)
        _run_worker_once(prefect)
        ingested = read_table(store, "videos")
        assert set(ingested["participant_id"].to_list()) == {"82553", "82554"}
        quarantine = read_table(store, "quarantine")
        question = VIDEO_FILE_RE.match(corrupt.name)["q"]  # type: ignore[index]
        assert quarantine["video_id"].to_list() == [f"82554__Visite_1__Q{question}"]
        assert quarantine["stage"].to_list() == ["ingest"]
        fs_ids = feature_set_ids(tuple(DEFAULT_EXTRACTORS))
        stored = {(r[0], r[1]): r[2] for r in read_table(store, "extracted").select(
            "feature_set", "video_id", "n_frames").iter_rows()}
        reader = FeatureReader(store)
        for vid, n in ingested.select("video_id", "n_frames").iter_rows():
            for fs in fs_ids:
                assert stored[(fs, vid)] == n, (fs, vid)
                rows = reader.frames(fs, vid, 0, n)
                assert {a.shape[0] for a in rows.values()} == {n}
        assert not any(features_root(store).glob("*/82555"))
        assert "82555" in read_table(store, "exclusions")["participant_id"].to_list()
        first = read_table(store, "extract_runs").row(0, named=True)
        assert (first["extracted"], first["batches"]) == (ingested.height, 1)
        loads = json.loads(first["detail"])["model_loads_per_worker"]
        assert loads and set(loads.values()) == {1}  # models loaded once per worker

        # 2. a new batch arrives; an on-demand run extracts it and only it
        generate(inbox / "batch-002", SampleConfig(participants=1, first_participant=4,
                                                   seed=5, max_questions=1, fps=8.0,
                                                   max_seconds=14.0, workers=2))
        _arrived_long_ago(inbox / "batch-002")
        prefect.run("extract/extract", {}, watch=False)
        _run_worker_once(prefect)
        second = read_table(store, "extract_runs").row(1, named=True)
        assert (second["extracted"], second["batches"]) == (1, 1)
        assert second["skipped"] == ingested.height
        assert "82556" in read_table(store, "videos")["participant_id"].to_list()

        # 3. nothing new: nothing ingested, nothing extracted, nothing rewritten
        before = read_table(store, "extracted")
        prefect.run("extract/extract", {}, watch=False)
        _run_worker_once(prefect)
        third = read_table(store, "extract_runs").row(2, named=True)
        assert (third["extracted"], third["batches"]) == (0, 0)
        assert read_table(store, "extracted").equals(before)
        runs = json.loads(prefect.cli("flow-run", "ls", "--output", "json"))
        completed = [r for r in runs if r["state"]["type"] == "COMPLETED"
                     and r.get("deployment_id")]
        assert len(completed) >= 3
