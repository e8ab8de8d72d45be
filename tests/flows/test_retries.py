"""Transient faults are retried; a video that keeps failing is reported, the rest land.
(The per-video body is replaced to inject faults: a unit test of the flow's retry
policy; the real body runs in test_extract_e2e.py.) Device faults (out of GPU
memory) go through the real body, from a real extractor's model call. The flow runs in a child
process: after an in-process flow run, Prefect's fork handlers make every later
forked child of the process exit with status 1, which would break the fork tests
of the reader and the DataLoader that run later in this pytest process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flows.local import LocalPrefect

pytestmark = pytest.mark.slow  # flows in child processes, on the run's Prefect server

SCRIPT = r'''
import errno, json, sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from prefect.task_runners import ThreadPoolTaskRunner

import flows.extract as fx
from extractors.plan import plan_from_names
from flows.job import ExtractReport, VideoJob, VideoOutcome, record_run, summarise
from store.schema import empty
from store.tables import read_table, utc_now, write_table

calls = Counter()


def flaky(store, job, names, runtime=None):
    calls[job.video_id] += 1
    if job.video_id.endswith("Q1") and calls[job.video_id] == 1:
        raise OSError(errno.ESTALE, "NFS hiccup")  # once: a retry fixes it
    if job.video_id.endswith("Q2"):
        raise OSError(errno.EIO, "disk gone")  # every time
    if job.video_id.endswith("Q3"):
        return job.missing  # a bug in the task's code: an AttributeError
    return VideoOutcome(job.video_id, job.participant_id, "extracted", job.n_frames)


fx.run_video = flaky
fx.extract_video_task = fx.extract_video_task.with_options(retry_delay_seconds=0)
jobs = [VideoJob(f"P001__Visite_1__Q{q}", "P001", "/data", f"q{q}.mp4", 10) for q in (1, 2, 3)]
store = Path(sys.argv[1]) / "store"
store.mkdir()
write_table(store, "videos", empty("videos"))  # a store without videos: just the bugs
started = utc_now()
outcomes = fx.extract_videos.with_options(task_runner=ThreadPoolTaskRunner(
    max_workers=2))(str(store), jobs, plan_from_names(["logmel"]))
record_run(store, summarise(outcomes, ExtractReport(run_id="r")), started)
print("RESULT " + json.dumps({"outcomes": [asdict(o) for o in outcomes], "calls": calls,
                              "bugs": read_table(store, "bugs").to_dicts()}))
'''


def _run(script_text: str, arg: Path, tmp_path: Path, prefect: LocalPrefect
         ) -> dict[str, Any]:
    """Run ``script_text``, its flow reporting to the run's shared Prefect server; its
    ``RESULT`` line, parsed."""
    script = tmp_path / "script.py"
    script.write_text(script_text)
    res = subprocess.run([sys.executable, str(script), str(arg)], env=prefect.env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    line = next(x for x in res.stdout.splitlines() if x.startswith("RESULT "))
    out: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return out


def test_transient_faults_are_retried_and_lasting_ones_reported(
        tmp_path: Path, prefect_server: LocalPrefect) -> None:
    """A transient machine fault is retried; one that stays leaves the video failed
    (pending); a bug in the task's code lands in the bugs table with its traceback."""
    data = _run(SCRIPT, tmp_path, tmp_path, prefect_server)
    by_video = {o["video_id"]: o for o in data["outcomes"]}
    assert by_video["P001__Visite_1__Q1"]["status"] == "extracted"
    assert data["calls"]["P001__Visite_1__Q1"] == 2
    assert by_video["P001__Visite_1__Q2"]["status"] == "failed"
    assert "disk gone" in by_video["P001__Visite_1__Q2"]["reason"]
    assert by_video["P001__Visite_1__Q2"]["kind"] == "EIO"
    assert data["calls"]["P001__Visite_1__Q2"] == 3  # the first try and two retries
    bug = by_video["P001__Visite_1__Q3"]
    assert bug["status"] == "bug" and bug["kind"] == "AttributeError"
    assert data["calls"]["P001__Visite_1__Q3"] == 1  # a bug is not retried
    [row] = data["bugs"]
    assert row["video_id"] == "P001__Visite_1__Q3" and "'missing'" in row["error"]
    assert "Traceback" in row["traceback"] and "in flaky" in row["traceback"]


DEVICE_SCRIPT = r'''
import json, sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

from prefect.task_runners import ThreadPoolTaskRunner

import flows.extract as fx
from extractors.audio import LogMelExtractor
from extractors.base import register
from extractors.plan import plan_from_names
from extractors.runtime import Runtime
from flows.job import ExtractReport, pending_jobs, record_run, summarise
from store.errors import DeviceError
from store.tables import utc_now

calls = Counter()


@register
class GpuLogMel(LogMelExtractor):
    """The real log-mel extractor; its model call runs out of GPU memory once for
    the first video, and every time for the second."""
    name = "gpu_logmel"

    def compute(self, video):
        calls[video.video_id] += 1
        if video.video_id == first and calls[first] == 1 or video.video_id == second:
            raise DeviceError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().compute(video)


store = Path(sys.argv[1])
plan = plan_from_names(["gpu_logmel"])
fs_ids = [GpuLogMel().spec().id]
todo, _ = pending_jobs(store, fs_ids)
first, second = todo[0].video_id, todo[1].video_id
fx.extract_video_task = fx.extract_video_task.with_options(retry_delay_seconds=0)
started = utc_now()
outcomes = fx.extract_videos.with_options(task_runner=ThreadPoolTaskRunner(
    max_workers=2))(str(store), todo[:2], plan, Runtime())
report = summarise(outcomes, ExtractReport(feature_sets=fs_ids))
record_run(store, report, started)
print("RESULT " + json.dumps({"first": first, "second": second, "calls": calls,
                              "report": report.as_dict(), "fs_id": fs_ids[0]}))
'''


def test_device_faults_are_retried_then_failed_never_quarantined(
        sample_release: Path, tmp_path: Path, prefect_server: LocalPrefect) -> None:
    """Out of GPU memory raised by a real extractor's model call, through the Prefect
    task's retries and the real ``run_video``: once, and the retry lands the video;
    every time, and the video is reported failed (not quarantined, nothing published,
    its lock free), so the next run takes it again."""
    from store.ingest import ingest
    from store.layout import is_published
    from store.locks import video_lock
    from store.tables import read_table, read_table_or_empty

    store = tmp_path / "store"
    ingest(sample_release, store)
    data = _run(DEVICE_SCRIPT, store, tmp_path, prefect_server)
    first, second, report = data["first"], data["second"], data["report"]
    assert report["extracted"] == [first] and data["calls"][first] == 2
    assert list(report["failed"]) == [second] and data["calls"][second] == 3
    assert "CUDA out of memory" in report["failed"][second]
    assert report["quarantined"] == {}
    assert read_table_or_empty(store, "quarantine").height == 0
    videos = read_table(store, "videos")
    pid = videos.filter(videos["video_id"] == second)["participant_id"][0]
    assert not is_published(store, data["fs_id"], pid, second)
    with video_lock(store, second) as mine:
        assert mine  # released after the last try
    from flows.job import pending_jobs

    todo, _ = pending_jobs(store, [data["fs_id"]])
    assert second in [j.video_id for j in todo]  # the next run tries it again
