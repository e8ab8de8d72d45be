"""Transient faults are retried; a video that keeps failing is reported, the rest land.
(The per-video body is replaced here, to inject faults: a unit test of the flow's
retry policy. The real body runs in test_extract_e2e.py.)"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.testing.utilities import prefect_test_harness

import flows.extract as fx
from extractors.batch import VideoJob, VideoOutcome

pytestmark = pytest.mark.slow  # a temporary Prefect server (~10 s)


@pytest.fixture(scope="module", autouse=True)
def _prefect() -> Iterator[None]:
    with prefect_test_harness():
        yield


def _jobs() -> list[dict[str, object]]:
    return [asdict(VideoJob(f"P001__Visite_1__Q{q}", "P001", "/data", f"q{q}.mp4", 10))
            for q in (1, 2)]


def test_transient_faults_are_retried_and_lasting_ones_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: Counter[str] = Counter()

    def flaky(store: str, job: VideoJob, names: tuple[str, ...]) -> VideoOutcome:
        calls[job.video_id] += 1
        if job.video_id.endswith("Q1") and calls[job.video_id] == 1:
            raise OSError("NFS hiccup")  # once: a retry fixes it
        if job.video_id.endswith("Q2"):
            raise OSError("disk gone")  # every time
        return VideoOutcome(job.video_id, job.participant_id, "extracted", job.n_frames)

    monkeypatch.setattr(fx, "run_video", flaky)
    monkeypatch.setattr(fx, "extract_video_task",
                        fx.extract_video_task.with_options(retry_delay_seconds=0))
    runner: Any = ThreadPoolTaskRunner(max_workers=2)
    outcomes = fx.extract_videos.with_options(task_runner=runner)(str(tmp_path), _jobs(),
                                                                  ["logmel"])
    by_video = {o["video_id"]: o for o in outcomes}
    assert by_video["P001__Visite_1__Q1"]["status"] == "extracted"
    assert calls["P001__Visite_1__Q1"] == 2
    assert by_video["P001__Visite_1__Q2"]["status"] == "failed"
    assert "disk gone" in by_video["P001__Visite_1__Q2"]["reason"]
    assert calls["P001__Visite_1__Q2"] == 3  # the first try and two retries
