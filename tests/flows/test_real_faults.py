"""Machine faults and a failing model, caused for real (nothing of the handling code
is replaced), each with the outcome docs/reliability.md lists:

* a full filesystem (a small tmpfs, filled up while ``bahfs extract`` is stopped
  between two videos): the run stops within seconds, non-zero, saying the disk is
  full and how many videos remain; nothing is quarantined; the rerun after freeing
  space completes and verifies. Without the right to mount, ``RLIMIT_FSIZE``;
* the store's filesystem remounted read-only between two videos: the run stops
  saying so; the rerun once writable completes;
* a model file removed between two videos: the run stops saying so;
* host memory exhausted (``RLIMIT_AS`` in the child): the video stays pending,
  raised for a retry, never quarantined;
* a face model (an ONNX file by path, built here) whose graph fails on real face
  crops: a bug on each video it fails on, its traceback saved, never a quarantine;
  the other videos land.

Runs are child processes in sessions of their own, stopped at the ``video`` fault
point (``BAHFS_FAULT=video:2:stop``: the second video's job, before it claims
anything in the store) while the fault is made.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bahfs.sample.generate import SampleConfig
from flows.local import LocalPrefect
from store.ingest import ingest
from store.tables import read_table, read_table_or_empty
from store.verify import verify_store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

BAHFS = str(Path(sys.executable).with_name("bahfs"))
CHILD = r'''
import json, sys
from pathlib import Path
from extractors.plan import read_plan
from flows.job import extract_release
store, plan = Path(sys.argv[1]), sys.argv[2]
plan = read_plan(Path(plan)) if plan.endswith(".yml") else tuple(plan.split(","))
try:
    report = extract_release(store, plan)
    print("RESULT " + json.dumps({"ok": True, "report": report.as_dict()}))
except Exception as exc:
    print("RESULT " + json.dumps({"ok": False, "type": type(exc).__name__, "error": str(exc)}))
'''


@pytest.fixture(scope="module")
def release(generated: Callable[[SampleConfig], Path]) -> Path:
    """Two consenting participants, one short video each (5 fps: 70 frames; shared:
    read-only)."""
    return generated(SampleConfig(participants=3, seed=3, max_questions=1, max_seconds=14.0,
                                  fps=5.0, workers=2))


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 48 MB tmpfs, or a skip where this process may not mount one."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip()}): "
                    "test_file_size_limit covers a full disk without it")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _session(sid: int) -> list[tuple[int, str]]:
    """(pid, state) of the processes of session ``sid``."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            fields = text[text.rindex(")") + 2:].split()
        except (OSError, ValueError):
            continue
        if int(fields[3]) == sid:
            out.append((int(stat.parent.name), fields[0]))
    return out


class Child:
    """A run in a session of its own; ``BAHFS_FAULT`` optional."""

    def __init__(self, argv: list[str], log: Path, fault: str = "",
                 env: dict[str, str] | None = None, limit: tuple[int, int] | None = None
                 ) -> None:
        self.log = log
        full = {**os.environ, **(env or {}), "BAHFS_FAULT": fault, "BAHFS_THREADS": "1"}

        def set_limit() -> None:
            if limit is not None:
                import resource

                resource.setrlimit(limit[0], (limit[1], resource.RLIM_INFINITY))

        with open(log, "wb") as fh:
            self.proc = subprocess.Popen(argv, env=full, stdout=fh, stderr=subprocess.STDOUT,
                                         start_new_session=True, preexec_fn=set_limit)

    def stopped(self, timeout_s: float = 300.0) -> int:
        """The pid of the process stopped at the fault point."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            for pid, state in _session(self.proc.pid):
                if state == "T":
                    return pid
            time.sleep(0.05)
        raise AssertionError(f"never stopped (exit {self.proc.poll()}): {self.text()[-3000:]}")

    def finish(self, timeout_s: float = 600.0) -> int:
        try:
            return self.proc.wait(timeout_s)
        finally:
            for pid, _ in _session(self.proc.pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def result(self) -> dict[str, Any]:
        line = next((ln for ln in self.text().splitlines() if ln.startswith("RESULT ")), None)
        assert line is not None, self.text()[-3000:]
        out: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
        return out


def _extract(store: Path, plan: str, log: Path, **kwargs: Any) -> Child:
    return Child([sys.executable, "-c", CHILD, str(store), plan], log, **kwargs)


def _fill(folder: Path) -> None:
    """Write until the filesystem says it is full."""
    with open(folder / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    try:
        with open(folder / "filler2", "wb") as fh:
            while True:
                fh.write(b"\0" * 512)
                fh.flush()
    except OSError:
        pass


def _all_extracted(store: Path) -> None:
    videos = set(read_table(store, "videos")["video_id"].to_list())
    assert set(read_table(store, "extracted")["video_id"].to_list()) == videos
    assert [p for p in verify_store(store) if p.severity == "error"] == []


def test_a_full_disk_stops_bahfs_extract_within_seconds(
        release: Path, tmpfs: Path, tmp_path: Path, prefect_server: LocalPrefect) -> None:
    store = tmpfs / "store"
    prefect = prefect_server
    argv = [BAHFS, "extract", str(release), str(store), "--extractors",
            "logmel", "--workers", "1"]
    run = Child(argv, tmp_path / "full.log", fault="video:2:stop", env=prefect.env)
    worker = run.stopped()  # the Dask worker, after one video, before the next
    n_videos = read_table(store, "videos").height
    _fill(tmpfs)
    t0 = time.monotonic()
    os.kill(worker, signal.SIGCONT)
    rc = run.finish()
    took = time.monotonic() - t0
    out = run.text()
    assert rc != 0, out[-3000:]
    assert took < 60, f"{took:.0f} s to stop"
    assert "disk full" in out and "free space" in out
    assert f"{n_videos - 1} of {n_videos} videos remain pending" in out
    assert read_table_or_empty(store, "quarantine").height == 0
    for name in ("filler", "filler2"):
        (tmpfs / name).unlink(missing_ok=True)
    again = Child([a for a in argv], tmp_path / "again.log", env=prefect.env)
    assert again.finish() == 0, again.text()[-3000:]
    _all_extracted(store)
    assert read_table_or_empty(store, "quarantine").height == 0


def test_a_store_made_read_only_mid_run_stops_it(release: Path, tmpfs: Path,
                                                  tmp_path: Path) -> None:
    store = tmpfs / "store"
    ingest(release, store)
    run = _extract(store, "logmel", tmp_path / "ro.log", fault="video:2:stop")
    pid = run.stopped()
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    try:
        os.kill(pid, signal.SIGCONT)
        run.finish()
        res = run.result()
        assert not res["ok"] and res["type"] == "MachineError", res
        assert "read-only filesystem" in res["error"] and "remount" in res["error"]
        assert "videos remain pending" in res["error"]
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
    assert read_table_or_empty(store, "quarantine").height == 0
    again = _extract(store, "logmel", tmp_path / "again.log")
    again.finish()
    assert again.result()["ok"]
    _all_extracted(store)


def _face_model(path: Path, k: float) -> Path:
    """A face model (32x32 grey, NCHW, one (batch, 4) output) whose graph picks a row of
    a one-row table by ``floor(mean pixel * k)``: out of bounds, and so an ONNX
    Runtime error, for any crop whose mean is at least ``1 / k`` of white."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m4"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Flatten", ["m4"], ["m"], axis=1),
        helper.make_node("ReduceMean", ["x"], ["g"], keepdims=0),
        helper.make_node("Mul", ["g", "k"], ["gk"]),
        helper.make_node("Floor", ["gk"], ["gf"]),
        helper.make_node("Cast", ["gf"], ["gi"], to=TensorProto.INT64),
        helper.make_node("Unsqueeze", ["gi", "axis0"], ["idx"]),
        helper.make_node("Gather", ["table", "idx"], ["row"], axis=0),
        helper.make_node("Add", ["m", "row"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "brightness_gather",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        [numpy_helper.from_array(np.array(k, np.float32), "k"),
         numpy_helper.from_array(np.zeros((1, 4), np.float32), "table"),
         numpy_helper.from_array(np.array([0], np.int64), "axis0")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _face_plan(tmp_path: Path, model: Path) -> Path:
    plan = tmp_path / "plan.yml"
    plan.write_text(f"face:\n  model_path: {model}\n")
    return plan


def test_a_model_file_removed_mid_run_stops_it(release: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest(release, store)
    model = _face_model(tmp_path / "face.onnx", k=0.0)  # k 0: never fails
    run = _extract(store, str(_face_plan(tmp_path, model)), tmp_path / "model.log",
                   fault="video:2:stop")
    pid = run.stopped()
    moved = model.rename(tmp_path / "elsewhere.onnx")
    os.kill(pid, signal.SIGCONT)
    run.finish()
    res = run.result()
    assert not res["ok"] and res["type"] == "MachineError", res
    assert "model file removed since this process loaded it" in res["error"]
    assert f"file: {model}" in res["error"] and "1 of 2 videos remain pending" in res["error"]
    assert read_table_or_empty(store, "quarantine").height == 0
    moved.rename(model)
    again = _extract(store, str(_face_plan(tmp_path, model)), tmp_path / "again.log")
    again.finish()
    assert again.result()["ok"], again.text()[-3000:]


def test_a_face_model_failing_on_real_frames_is_a_bug_not_a_quarantine(
        release: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest(release, store)
    model = _face_model(tmp_path / "face.onnx", k=100.0)  # fails on any crop over 1 % grey
    run = _extract(store, str(_face_plan(tmp_path, model)), tmp_path / "bug.log")
    run.finish()
    res = run.result()
    assert res["ok"], res
    report = res["report"]
    n = read_table(store, "videos").height
    assert report["bugs"] and len(report["bugs"]) + len(report["extracted"]) == n
    assert not report["quarantined"] and read_table_or_empty(store, "quarantine").height == 0
    bugs = read_table(store, "bugs")
    assert sorted(bugs["video_id"].to_list()) == sorted(report["bugs"])
    assert all("onnxruntime" in tb and "Gather" in tb for tb in bugs["traceback"].to_list())


def test_host_memory_exhausted_leaves_the_video_pending(release: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest(release, store)
    script = r'''
import json, resource, sys
from dataclasses import asdict
from pathlib import Path
from flows.job import feature_set_ids, pending_jobs, run_video
from store.errors import MachineError
store = Path(sys.argv[1])
plan = ("logmel",)
todo, _ = pending_jobs(store, feature_set_ids(plan))
first = run_video(store, todo[0], plan)  # imports, threads, models: warm
size = int(Path("/proc/self/status").read_text().split("VmSize:")[1].split()[0]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + (8 << 20), resource.RLIM_INFINITY))
try:
    out = {"status": run_video(store, todo[1], plan).status}
except MachineError as exc:
    out = {"raised": "MachineError", "error": str(exc)}
resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
print("RESULT " + json.dumps({"first": first.status, "video": todo[1].video_id, **out}))
'''
    run = Child([sys.executable, "-c", script, str(store)], tmp_path / "mem.log")
    run.finish()
    res = run.result()
    assert res["first"] == "extracted"
    assert res.get("raised") == "MachineError", res  # for the task's retries
    assert "memory" in res["error"] and res["video"] in res["error"]
    assert read_table_or_empty(store, "quarantine").height == 0
    from flows.job import feature_set_ids, pending_jobs

    todo, _ = pending_jobs(store, feature_set_ids(("logmel",)))
    assert [j.video_id for j in todo] == [res["video"]]  # pending: the next run takes it


def test_file_size_limit_stops_the_run(release: Path, tmp_path: Path) -> None:
    """A full disk without the right to mount: ``RLIMIT_FSIZE`` makes every write past
    4 KB fail (EFBIG) in the child."""
    import resource

    store = tmp_path / "store"
    ingest(release, store)
    run = _extract(store, "logmel", tmp_path / "fsize.log",
                   limit=(resource.RLIMIT_FSIZE, 4096))
    run.finish()
    res = run.result()
    assert not res["ok"] and res["type"] == "MachineError", res
    assert "file size limit reached" in res["error"] and "ulimit -f" in res["error"]
    assert "2 of 2 videos remain pending" in res["error"]
    assert read_table_or_empty(store, "quarantine").height == 0
    shutil.rmtree(store / ".staging", ignore_errors=True)
    again = _extract(store, "logmel", tmp_path / "again.log")
    again.finish()
    assert again.result()["ok"]
    _all_extracted(store)
