"""Transient faults are retried; a video that keeps failing is reported, the rest land.
(The per-video body is replaced to inject faults: a unit test of the flow's retry
policy; the real body runs in test_extract_e2e.py.) The flow runs in a child
process: after an in-process flow run, Prefect's fork handlers make every later
forked child of the process exit with status 1, which would break the fork tests
of the reader and the DataLoader that run later in this pytest process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a temporary Prefect server (~10 s)

SCRIPT = r'''
import json, sys
from collections import Counter
from dataclasses import asdict

from prefect.task_runners import ThreadPoolTaskRunner
from prefect.testing.utilities import prefect_test_harness

import flows.extract as fx
from flows.job import VideoJob, VideoOutcome

calls = Counter()


def flaky(store, job, names):
    calls[job.video_id] += 1
    if job.video_id.endswith("Q1") and calls[job.video_id] == 1:
        raise OSError("NFS hiccup")  # once: a retry fixes it
    if job.video_id.endswith("Q2"):
        raise OSError("disk gone")  # every time
    return VideoOutcome(job.video_id, job.participant_id, "extracted", job.n_frames)


fx.run_video = flaky
fx.extract_video_task = fx.extract_video_task.with_options(retry_delay_seconds=0)
jobs = [asdict(VideoJob(f"P001__Visite_1__Q{q}", "P001", "/data", f"q{q}.mp4", 10))
        for q in (1, 2)]
with prefect_test_harness():
    outcomes = fx.extract_videos.with_options(task_runner=ThreadPoolTaskRunner(
        max_workers=2))(sys.argv[1], jobs, ["logmel"])
print("RESULT " + json.dumps({"outcomes": outcomes, "calls": calls}))
'''


def test_transient_faults_are_retried_and_lasting_ones_reported(tmp_path: Path) -> None:
    script = tmp_path / "retries.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    res = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    line = next(x for x in res.stdout.splitlines() if x.startswith("RESULT "))
    data = json.loads(line.removeprefix("RESULT "))
    by_video = {o["video_id"]: o for o in data["outcomes"]}
    assert by_video["P001__Visite_1__Q1"]["status"] == "extracted"
    assert data["calls"]["P001__Visite_1__Q1"] == 2
    assert by_video["P001__Visite_1__Q2"]["status"] == "failed"
    assert "disk gone" in by_video["P001__Visite_1__Q2"]["reason"]
    assert data["calls"]["P001__Visite_1__Q2"] == 3  # the first try and two retries
