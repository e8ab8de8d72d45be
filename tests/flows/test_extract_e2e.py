"""End to end through real Prefect: a local server, `prefect deploy` from prefect.yaml,
`prefect deployment run extract/extract`, a process worker, real models on Dask, and
the store checked afterwards. A second run over the same inbox extracts nothing."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from bahfs.release import codebook as cb
from bahfs.sample.generate import SampleConfig, generate
from extractors import DEFAULT_EXTRACTORS
from extractors.batch import feature_set_ids
from flows.local import LocalPrefect
from store.layout import features_root
from store.reader import FeatureReader
from store.tables import read_table

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_deployment_run_extracts_the_inbox(tmp_path: Path) -> None:
    inbox, store = tmp_path / "inbox", tmp_path / "store"
    # P001, P002 consent; P003 declines (the generator always shows one decline)
    generate(inbox / "batch-001", SampleConfig(participants=3, seed=3, max_questions=2,
                                               max_seconds=14.0, workers=2))
    videos = sorted((inbox / "batch-001" / cb.VIDEOS_DIR / "P002").rglob("*.mp4"))
    corrupt = videos[0]
    corrupt.write_bytes(corrupt.read_bytes()[: corrupt.stat().st_size // 3])  # truncated
    params = {"source": str(inbox), "store": str(store)}

    with LocalPrefect(tmp_path / "prefect") as prefect:
        prefect.deploy("extract")
        assert "extract/extract" in prefect.cli("deployment", "ls")
        prefect.run("extract/extract", params, watch=False)
        worker = prefect.start_worker(run_once=True)
        assert worker.wait(timeout=600) == 0
        runs = json.loads(prefect.cli("flow-run", "ls", "--output", "json"))

        ingested = read_table(store, "videos")
        assert set(ingested["participant_id"].to_list()) <= {"P001", "P002"}
        quarantine = read_table(store, "quarantine")
        bad = quarantine["video_id"].to_list()
        assert len(bad) == 1 and bad[0].startswith("P002")
        assert quarantine["stage"].to_list() == ["ingest"]
        reader = FeatureReader(store)
        fs_ids = feature_set_ids(tuple(DEFAULT_EXTRACTORS))
        stored = {(r[0], r[1]): r[2] for r in read_table(store, "extracted").select(
            "feature_set", "video_id", "n_frames").iter_rows()}
        for vid, n in ingested.select("video_id", "n_frames").iter_rows():
            for fs in fs_ids:
                assert stored[(fs, vid)] == n, (fs, vid)
                rows = reader.frames(fs, vid, 0, n)
                assert {a.shape[0] for a in rows.values()} == {n}
        assert not any(features_root(store).glob("*/P003"))
        assert "P003" in read_table(store, "exclusions")["participant_id"].to_list()
        assert bad[0] not in set(read_table(store, "extracted")["video_id"].to_list())
        first = read_table(store, "extract_runs").row(0, named=True)
        assert first["extracted"] == ingested.height and first["quarantined"] == 0
        loads = json.loads(first["detail"])["model_loads_per_worker"]
        assert loads and set(loads.values()) == {1}  # models loaded once per worker

        # the same inbox again: nothing new to ingest or extract
        before = read_table(store, "extracted")
        prefect.run("extract/extract", params, watch=False)
        assert prefect.start_worker(run_once=True).wait(timeout=300) == 0
        second = read_table(store, "extract_runs").row(1, named=True)
        assert (second["extracted"], second["batches"]) == (0, 0)
        assert second["skipped"] == ingested.height
        assert read_table(store, "extracted").equals(before)
        states = [r["state"]["type"] for r in
                  json.loads(prefect.cli("flow-run", "ls", "--output", "json"))
                  if r["name"] and r.get("parent_task_run_id") is None]
        assert runs and states.count("COMPLETED") >= 2
    assert read_table(store, "batches").filter(pl.col("batch") == "batch-001").height == 1
