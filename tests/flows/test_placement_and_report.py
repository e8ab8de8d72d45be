"""The flows' helpers: Dask runner choice and the run summary."""

from __future__ import annotations

import os

import pytest

from flows.cluster import dask_runner
from flows.job import ExtractReport
from flows.placement import local_workers
from flows.report import summary_markdown
from store.errors import ConfigError


def test_dask_address_needs_a_scheme() -> None:
    with pytest.raises(ConfigError, match="tcp://host:8786"):
        dask_runner("scheduler-host:8786", 2)


def test_local_cluster_by_default_and_address_when_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BAHFS_DASK_ADDRESS", raising=False)
    local = dask_runner(None, 3)
    assert local.cluster_kwargs["n_workers"] == 3  # type: ignore[attr-defined]
    assert local.cluster_kwargs["threads_per_worker"] == 1  # type: ignore[attr-defined]
    assert local.cluster_kwargs["security"] is True  # type: ignore[attr-defined]
    # each task is given its threads (flows.placement.task_threads), not the environment
    assert "BAHFS_THREADS" not in local.cluster_kwargs["env"]  # type: ignore[attr-defined]
    monkeypatch.setenv("BAHFS_DASK_ADDRESS", "tcp://10.0.0.5:8786")
    assert dask_runner(None, 3).address == "tcp://10.0.0.5:8786"  # type: ignore[attr-defined]


def test_local_workers_are_one_per_core_at_most_eight(monkeypatch: pytest.MonkeyPatch) -> None:
    for cores, workers in ((None, 1), (1, 1), (2, 2), (6, 6), (8, 8), (32, 8)):
        monkeypatch.setattr(os, "cpu_count", lambda n=cores: n)
        assert local_workers(None) == workers, cores
    assert local_workers(3) == 3  # as asked, whatever the cores


def test_summary_names_quarantined_videos_and_reasons() -> None:
    report = ExtractReport(feature_sets=["face-abc"], extracted=["a", "b"], skipped=["c"],
                           quarantined={"d": "decoded 10 frames, the videos table says 12"},
                           frames=500, model_loads={"host:1": 1})
    text = summary_markdown(report)
    assert "| extracted | 2 (500 frames) |" in text
    assert "| d | decoded 10 frames, the videos table says 12 |" in text
    assert "host:1: 1" in text


def test_threads_per_process_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    from extractors.runtime import threads_per_process

    monkeypatch.setenv("BAHFS_THREADS", "3")
    assert threads_per_process() == 3
    monkeypatch.setenv("BAHFS_THREADS", "many")
    with pytest.raises(ConfigError, match="BAHFS_THREADS"):
        threads_per_process()
