"""Several videos in flight in one worker process (flows.job with a batching runtime):
their face model calls are shared, each video's features are what it gets alone,
and a broken video among them is quarantined under its own id."""

from __future__ import annotations

import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from extractors.context import CONTEXTS, WorkerContext
from extractors.pipeline import extract_all
from extractors.plan import entry
from extractors.runtime import Runtime
from flows.engine import extract_release
from flows.job import VideoJob, pending_jobs, run_video
from store.devices import parse_device
from store.ingest import ingest
from store.reader import FeatureReader
from store.release import codebook as cb
from store.tables import read_table


@pytest.mark.slow  # the face models on three short videos (~25 s on 2 cores)
def test_videos_in_flight_share_model_calls_and_keep_their_own_faults(
        sample_release: Path, mutable_release: Path, tmp_path: Path) -> None:
    videos_dir = mutable_release / cb.VIDEOS_DIR
    videos_dir.unlink()
    shutil.copytree(sample_release / cb.VIDEOS_DIR, videos_dir)
    store = tmp_path / "store"
    ingest(mutable_release, store)
    plan = (entry("face", "face", {"detector": {"input_width": 160}}),)  # quicker
    batched = Runtime(parse_device("cpu"), 1, 48)
    with CONTEXTS.use(plan, batched) as context:  # the worker context run_video uses
        fs_id = context.ids[0]
        server = context.services.server
    assert server is not None
    jobs = pending_jobs(store, [fs_id])[0][:3]
    broken = jobs[1]
    data = broken.file.read_bytes()  # cut short: the decode ends early, an input fault
    broken.file.write_bytes(data[: len(data) // 3])
    server.reset_stats()
    # a wider gather window than the default 2 ms: on loaded cores (the suite runs on
    # every core) three videos' requests can miss a 2 ms window; sharing, not its
    # speed, is what this test shows (benchmarks/worker.py measures the default)
    server.max_wait_s = 0.25

    def one(job: VideoJob) -> tuple[str, str, str]:
        out = run_video(store, job, plan, batched)
        return out.video_id, out.status, out.reason

    with ThreadPoolExecutor(3) as pool:
        outcomes = list(pool.map(one, jobs))
    stats = server.stats
    assert stats.calls < stats.requests  # calls of different videos were shared
    assert stats.retried_alone == 0  # the broken video never broke a model call
    assert [(v, s) for v, s, _ in outcomes] == [
        (jobs[0].video_id, "extracted"), (broken.video_id, "quarantined"),
        (jobs[2].video_id, "extracted")]
    cut = re.match(r"video is truncated: its header declares (\d+) frames, the file holds "
                   r"(\d+) \| file: (.+) \| participant: (\S+) \| video: (\S+) \|",
                   outcomes[1][2])
    assert cut, outcomes[1][2]
    assert int(cut[2]) < int(cut[1]) == broken.n_frames
    assert (cut[3], cut[4], cut[5]) == (str(broken.file), broken.participant_id,
                                        broken.video_id)
    reader = FeatureReader(store)
    alone = WorkerContext.open(plan, Runtime(parse_device("cpu"), 1))  # no model thread
    assert alone.services.server is None
    for job in jobs[:1]:
        (ref,) = extract_all(job.file, list(alone.extractors), video_id=job.video_id,
                             participant_id=job.participant_id)
        stored = reader.video(fs_id, job.video_id)
        for name, arr in ref.arrays.items():
            np.testing.assert_array_equal(stored[name], arr, err_msg=name)
    alone.close()
    # the run's own entry point, two at a time (logmel: quick): the broken video is
    # quarantined, every other one lands
    report = extract_release(store, ("logmel",), runtime=batched, videos=2)
    assert list(report.quarantined) == [broken.video_id]
    assert len(report.extracted) == read_table(store, "videos").height - 1
