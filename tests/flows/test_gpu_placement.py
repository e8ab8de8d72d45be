"""GPUs: a device fault is never the video's (it propagates to be retried, the video
is neither quarantined nor published, its lock is released), and where extraction
tasks run: one Dask worker per GPU, each offering ``GPU=1`` and seeing only its own
``CUDA_VISIBLE_DEVICES``, tasks asking for one. Every decision is tested on the CPU:
the GPU count is given, the "GPU" workers are ordinary processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from extractors.audio import LogMelExtractor
from extractors.base import DecodedVideo, register
from extractors.plan import plan_from_names
from extractors.runtime import device_fault_kind
from flows.cluster import dask_runner, gpu_cluster
from flows.job import VideoJob, run_video
from flows.local import LocalPrefect
from flows.placement import (
    Placement,
    batch_rows,
    gpu_annotation,
    local_gpus,
    placement,
    task_threads,
    videos_per_worker,
)
from store.devices import parse_device
from store.errors import ConfigError, DeviceError, ExtractionError
from store.ingest import ingest
from store.layout import is_published
from store.locks import video_lock
from store.tables import read_table, read_table_or_empty


@register
class FlakyLogMel(LogMelExtractor):
    """The real log-mel extractor whose model call runs out of GPU memory the first
    ``fail_times`` times it is called for a video."""

    name = "flaky_logmel"
    fail_times = 1
    calls: dict[str, int] = {}  # noqa: RUF012 - one count per video, for the test

    def compute(self, video: DecodedVideo) -> dict[str, np.ndarray]:
        n = self.calls[video.video_id] = self.calls.get(video.video_id, 0) + 1
        if n <= self.fail_times:
            raise DeviceError("CUDA out of memory. Tried to allocate 2.00 GiB",
                              expected="a free GPU")
        return super().compute(video)


def test_a_device_fault_propagates_and_the_video_is_tried_again(sample_release: Path,
                                                               tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest(sample_release, store)
    vid, pid, src, rel, n = read_table(store, "videos").select(
        "video_id", "participant_id", "source", "path", "n_frames").row(0)
    job = VideoJob(vid, pid, src, rel, n)
    plan = plan_from_names(["flaky_logmel"])
    fs_id = FlakyLogMel().spec().id
    with pytest.raises(DeviceError, match="CUDA out of memory") as info:
        run_video(store, job, plan)
    assert "Tried to allocate" in str(info.value)
    assert not is_published(store, fs_id, pid, vid)
    assert read_table_or_empty(store, "quarantine").height == 0
    with video_lock(store, vid) as mine:
        assert mine  # released
    out = run_video(store, job, plan)  # the retry: the device works again
    assert out.status == "extracted" and out.frames == n
    assert is_published(store, fs_id, pid, vid)
    assert FlakyLogMel.calls[vid] == 2


def test_device_fault_finds_the_cause_an_extractor_wrapped() -> None:
    from store.failures import classify

    oom = DeviceError("CUDA out of memory")
    try:
        try:
            raise oom
        except DeviceError as exc:
            raise ExtractionError("words failed") from exc
    except ExtractionError as wrapped:
        fault = classify(wrapped, device=device_fault_kind)
        assert (fault.owner, fault.kind, fault.retry) == ("machine", "device memory", True)
    assert classify(ExtractionError("bad output"), device=device_fault_kind).owner == "bug"
    assert classify(oom, device=device_fault_kind).kind == "device memory"


@pytest.fixture
def no_gpu_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("BAHFS_DEVICE", "CUDA_VISIBLE_DEVICES", "BAHFS_DASK_ADDRESS"):
        monkeypatch.setenv(name, "")  # recorded: restored however the test changes it
        monkeypatch.delenv(name)
    return monkeypatch


AUTO, CPU, CUDA = parse_device("auto"), parse_device("cpu"), parse_device("cuda")


def test_which_gpus_get_a_worker(no_gpu_env: pytest.MonkeyPatch) -> None:
    env = no_gpu_env
    assert local_gpus(AUTO, gpu_count=0) == []  # auto, no GPU: CPU workers as always
    assert local_gpus(AUTO, gpu_count=2) == ["0", "1"]  # auto, GPUs: one worker each
    assert local_gpus(CPU, gpu_count=2) == []
    assert local_gpus(CUDA, gpu_count=3) == ["0", "1", "2"]
    with pytest.raises(DeviceError, match="no GPU here"):
        local_gpus(CUDA, gpu_count=0)
    assert local_gpus(parse_device("CUDA:1"), gpu_count=3) == ["1"]  # GPU 1 alone
    assert local_gpus(parse_device("cuda:0"), gpu_count=3) == ["0"]  # GPU 0 alone
    with pytest.raises(DeviceError, match="cuda:0 to cuda:1"):
        local_gpus(parse_device("cuda:2"), gpu_count=2)
    env.setenv("CUDA_VISIBLE_DEVICES", "2,3")  # what this process may use
    assert local_gpus(CUDA, gpu_count=8) == ["2", "3"]
    env.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(DeviceError):
        local_gpus(CUDA, gpu_count=8)


def test_placement_local_and_remote(no_gpu_env: pytest.MonkeyPatch) -> None:
    assert placement(None, AUTO, gpu_count=0) == Placement(None, (), False, AUTO)
    assert placement(None, AUTO, 2) == Placement(None, ("0", "1"), True, AUTO)
    assert placement(None, CUDA, 2) == Placement(None, ("0", "1"), True, CUDA)
    assert placement(None, CPU, gpu_count=2) == Placement(None, (), False, CPU)
    # an existing scheduler: its workers' GPUs are theirs; tasks ask for one when told
    assert placement("tcp://h:8786", CPU, 2) == Placement("tcp://h:8786", (), False, CPU)
    assert placement("tcp://h:8786", CUDA, 0) == Placement("tcp://h:8786", (), True, CUDA)
    pinned = parse_device("cuda:1")
    assert placement("tcp://h:8786", pinned, 0) == Placement("tcp://h:8786", (), True, pinned)


def test_tasks_get_their_share_of_the_cores(no_gpu_env: pytest.MonkeyPatch) -> None:
    no_gpu_env.delenv("BAHFS_THREADS", raising=False)
    no_gpu_env.setattr(os, "cpu_count", lambda: 12)
    assert task_threads(placement(None, CPU), 3) == 4  # 3 workers of 12 cores
    assert task_threads(placement(None, CPU), None) == 1  # a worker per core (at most 8)
    assert task_threads(placement(None, CUDA, 2), None) == 6  # a worker per GPU
    no_gpu_env.setattr(os, "cpu_count", lambda: 2)
    assert task_threads(placement(None, CPU), 3) == 1  # never less than one
    assert task_threads(placement("tcp://h:8786", CPU), 3) == 0  # the runtimes decide
    no_gpu_env.setenv("BAHFS_THREADS", "1")  # read where the run starts
    assert task_threads(placement(None, CPU), 3) == 1


def test_cluster_spec_one_worker_per_gpu(no_gpu_env: pytest.MonkeyPatch) -> None:
    cpu = dask_runner(None, 3)  # CPU only: exactly as before
    assert cpu.cluster_kwargs["n_workers"] == 3  # type: ignore[attr-defined]
    assert "CUDA_VISIBLE_DEVICES" not in cpu.cluster_kwargs["env"]  # type: ignore[attr-defined]
    where = placement(None, CUDA, gpu_count=3)
    runner: Any = dask_runner(where.address, 8, where.gpus)
    assert runner.cluster_class == "distributed.SpecCluster"
    workers = runner.cluster_kwargs["workers"]
    assert len(workers) == 3
    for i, spec in enumerate(workers.values()):
        opts = spec["options"]
        assert opts["resources"] == {"GPU": 1} and opts["nthreads"] == 1
        assert opts["env"]["CUDA_VISIBLE_DEVICES"] == str(i)
        assert "BAHFS_DEVICE" not in opts["env"] and "BAHFS_THREADS" not in opts["env"]
    assert where.device == CUDA  # what each task is told: its only GPU, 0 there


def test_annotation_only_for_gpu_tasks() -> None:
    from dask.base import get_annotations

    with gpu_annotation(False):
        assert "resources" not in get_annotations()
    with gpu_annotation(True):
        assert get_annotations()["resources"] == {"GPU": 1}


def _where_am_i() -> tuple[str, str, str]:
    import time

    from distributed import get_worker

    time.sleep(0.3)
    return (str(get_worker().name), os.environ.get("CUDA_VISIBLE_DEVICES", ""))


def test_gpu_workers_start_and_run_annotated_tasks(no_gpu_env: pytest.MonkeyPatch) -> None:
    """A real cluster from the spec: two "GPU" workers (resources and
    CUDA_VISIBLE_DEVICES; no GPU used) and a CPU worker that must get no GPU task."""
    from distributed import Client, Nanny, SpecCluster

    spec = gpu_cluster(["0", "1"], {})
    cpu_opts = {k: v for k, v in spec["workers"]["gpu-0"]["options"].items()
                if k not in ("resources", "env")}
    spec["workers"]["cpu"] = {"cls": Nanny, "options": cpu_opts}
    cluster_type: Any = SpecCluster  # distributed is untyped
    client_type: Any = Client
    with cluster_type(**spec) as cluster, client_type(cluster) as client:
        client.wait_for_workers(3, timeout=60)
        with gpu_annotation(True):
            futures = [client.submit(_where_am_i, pure=False) for _ in range(6)]
        seen = client.gather(futures)
    assert {name for name, _ in seen} == {"gpu-0", "gpu-1"}
    for name, visible in seen:
        assert visible == name.removeprefix("gpu-")


SCRIPT = r'''
import json, os, sys, time

from prefect import task

import flows.extract as fx
from extractors.runtime import Runtime
from flows.cluster import dask_runner
from flows.placement import placement
from flows.job import VideoJob, VideoOutcome
from store.devices import parse_device


@task(name="where")
def where(store, job, plan, runtime):
    from distributed import get_worker
    from distributed.worker import thread_state

    worker = get_worker()
    needs = worker.state.tasks[thread_state.key].resource_restrictions
    time.sleep(0.3)
    device = runtime.device.kind + (f":{runtime.device.index}" if runtime.device.pinned else "")
    return VideoOutcome(job.video_id, "P", "extracted", worker=json.dumps(
        [worker.name, os.environ.get("CUDA_VISIBLE_DEVICES"), device,
         os.environ.get("BAHFS_DEVICE"), needs]))


if __name__ == "__main__":  # the cluster's worker processes import this file
    fx.extract_video_task = where
    spot = placement(None, parse_device("cuda"), gpu_count=2)
    jobs = [VideoJob(f"v{i}", "P", "/data", f"v{i}.mp4", 1) for i in range(4)]
    outcomes = fx.extract_videos.with_options(task_runner=dask_runner(
        spot.address, None, spot.gpus))(sys.argv[1], jobs, (), Runtime(spot.device, 1),
                                         False, spot.gpu_tasks)
    print("RESULT " + json.dumps([json.loads(o.worker) for o in outcomes]))
'''


@pytest.mark.slow  # a child process, its flow on the run's Prefect server
def test_prefect_passes_the_gpu_annotation_to_dask(tmp_path: Path,
                                                   prefect_server: LocalPrefect) -> None:
    """The real ``extract_videos`` flow on the GPU cluster ``dask_runner`` builds (its
    per-video task replaced by one that says where it ran), in a child process like
    test_retries.py: every task ran on a GPU worker, asked for ``GPU=1``, and saw its
    worker's GPU alone."""
    script = tmp_path / "gpus.py"
    script.write_text(SCRIPT)
    env = dict(prefect_server.env)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    res = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=300, cwd=Path.cwd())
    assert res.returncode == 0, res.stderr[-3000:]
    line = next(x for x in res.stdout.splitlines() if x.startswith("RESULT "))
    seen = json.loads(line.removeprefix("RESULT "))
    assert len(seen) == 4
    for name, visible, device, env_device, needs in seen:
        assert name in ("gpu-0", "gpu-1") and visible == name.removeprefix("gpu-")
        assert device == "cuda" and env_device is None and needs == {"GPU": 1}


def test_device_option(media: dict[str, tuple[Path, object]], tmp_path: Path,
                       no_gpu_env: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from bahfs.cli import app

    runner = CliRunner()
    for command in (["extract-video", "x.mp4", "--out", str(tmp_path / "x.zarr")],
                    ["extract", str(tmp_path), str(tmp_path / "s")]):
        bad = runner.invoke(app, [*command, "--device", "gpu"])
        assert bad.exit_code == 2
        assert "device 'gpu'" in bad.output and "auto, cpu, cuda or cuda:N" in bad.output
    out = tmp_path / "v.zarr"
    ok = runner.invoke(app, ["extract-video", str(media["speech24"][0]), "--out", str(out),
                             "--extractors", "face_detect", "--device", "CPU"])
    assert ok.exit_code == 0, ok.output
    assert "BAHFS_DEVICE" not in os.environ and out.exists()  # passed, not exported
    assert read_table(out, "extracted")["device"].to_list() == ["cpu"]


def test_videos_in_flight_per_worker() -> None:
    """A GPU worker with N videos in flight: N threads, N ``GPU`` slots (each task asks
    one), model calls of up to 16 rows a video; CPU workers run one video by default."""
    assert videos_per_worker(None, where_gpus=True) == 4
    assert videos_per_worker(None, where_gpus=False) == 1
    assert videos_per_worker(2, where_gpus=False) == 2
    with pytest.raises(ConfigError):
        videos_per_worker(0, where_gpus=True)
    assert batch_rows(1) == 0 and batch_rows(4) == 64  # one video: no model thread
    for opts in (s["options"] for s in gpu_cluster(["0"], {}, 3)["workers"].values()):
        assert opts["nthreads"] == 3 and opts["resources"] == {"GPU": 3}
    cpu: Any = dask_runner(None, 2, videos=2)
    assert cpu.cluster_kwargs["threads_per_worker"] == 2
