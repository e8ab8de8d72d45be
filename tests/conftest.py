"""Shared fixtures: one small generated release and a few small videos, rendered once
per test run.

The suite runs on several pytest-xdist workers (``-n``). Whatever is expensive to make
(a generated release, the demo's store, the review store) is built once per run by
whichever worker asks first, under a file lock in the run's shared temporary folder
(:func:`build_once`), and only read afterwards: a test that changes it copies it
first. Without xdist the same code builds into the session's own folder."""

from __future__ import annotations

import os

# An xdist worker's share of the cores for every threaded runtime, set before numpy or
# torch is imported and inherited by every process a test starts: ONNX Runtime through
# BAHFS_THREADS (what an operator sets, docs/operations.md), torch and BLAS through
# their own variables. Without it each worker's runtimes take a thread per core, and
# on 2 cores the workers' threads wait on each other (benchmarks/RESULTS.md, the suite).
if _workers := int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")):
    _share = str(max(1, (os.cpu_count() or 1) // _workers))
    for _name in ("BAHFS_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                  "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, _share)

import hashlib
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from filelock import FileLock

from bahfs.sample.generate import SampleConfig, generate
from bahfs.sample.render import Appearance, write_video
from bahfs.sample.script import VideoPlan, plan_video
from store.release import codebook as cb

if TYPE_CHECKING:
    from flows.local import LocalPrefect

SAMPLE_CFG = SampleConfig(participants=4, seed=7, max_questions=2, max_seconds=14.0, workers=2)
# the demo's batch, also the release the learning tests train on: 10 participants (one
# declines consent), 1-2 answers each, 8 fps: 13 videos, train 7 / val 2 / test 4 (2
# with A/H); a seed whose test split holds both kinds of video
TAUGHT_CFG = SampleConfig(participants=10, seed=8, max_questions=2, max_seconds=14.0,
                          fps=8.0, ah_rate=0.7, workers=2)


#: seconds Prefect waits for its temporary server to answer (its default, 20, is too
#: short while every core runs tests: the server's start alone then takes 20-30 s)
EPHEMERAL_STARTUP_S = "120"


def pytest_configure(config: pytest.Config) -> None:
    """One Prefect home per xdist worker: flows run in process use Prefect's temporary
    server, whose SQLite database lives under ``PREFECT_HOME``; two workers sharing
    ``~/.prefect`` would lock each other out. Set before any test imports Prefect, and
    inherited by the processes the tests start."""
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
                          EPHEMERAL_STARTUP_S)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and "PREFECT_HOME" not in os.environ:
        base = Path(os.environ.get("TMPDIR", "/tmp")) / f"bahfs-prefect-{os.getppid()}"
        os.environ["PREFECT_HOME"] = str(base / worker)
        os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


# The test files that take longest (pytest --durations on 2 cores: docs/testing.md),
# longest first. They are handed to the xdist workers before the rest, so that the
# workers finish together instead of one starting the longest file last.
LONGEST_FIRST = (
    "bahfs/test_demo.py", "training/test_learning.py",  # one group: the demo's store
    "flows/test_extract_e2e.py", "flows/test_kill.py", "flows/test_s3_multihost.py",
    "extractors/test_contract.py",
    "flows/test_headline.py", "extractors/test_behaviour.py",
    "extractors/test_face_detect.py", "extractors/test_plugins.py", "bahfs/test_cli.py",
    "flows/test_real_faults.py", "store/release/test_big_yaml.py", "flows/test_secured.py",
    "flows/test_gpu_placement.py", "flows/test_retries.py", "extractors/test_face_track.py",
    "extractors/test_asr_whisperx.py", "extractors/test_speech.py", "test_lint.py",
)


#: test files that run on the same worker as another: the demo, and the tests that
#: train on the demo's store (built once per run: the other worker would wait for it)
SAME_WORKER = {"tests/bahfs/test_demo.py": "demo", "tests/training/test_learning.py": "demo",
               "tests/flows/test_plan_without_models.py": "demo"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest files first (a stable sort: each file keeps its own order)."""
    tests = Path(__file__).parent
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.relative_to(tests).as_posix(), len(rank)))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """xdist's scheduling by scope, the scope being the test file (or its
    ``SAME_WORKER`` group): a worker runs a whole file, so module fixtures (a Prefect
    server, loaded models) are made once. (xdist's own ``xdist_group`` marks do not
    group under pytest 9, whose node ids they can no longer rename.)"""
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return SAME_WORKER.get(path, path)

    return FileScheduling(config, log)


@pytest.fixture(scope="session")
def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder every xdist worker of this run sees (the session's own folder when
    the suite runs in one process)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(root: Path, name: str, build: Callable[[Path], None]) -> Path:
    """``root/name``, made by ``build`` once per test run: the first worker to ask builds
    it under a file lock, the others wait and reuse it. A build that failed (or a
    worker killed mid-build) leaves no marker, so the next asker starts it afresh."""
    target, done = root / name, root / f"{name}.built"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)
            build(target)
            done.touch()
    return target


@pytest.fixture(scope="session")
def built(shared_root: Path) -> Callable[[str, Callable[[Path], None]], Path]:
    """``built(name, build)``: :func:`build_once` in this run's shared folder, for the
    fixtures of other conftest files and test modules."""
    return lambda name, build: build_once(shared_root, name, build)


@pytest.fixture(scope="session")
def generated(shared_root: Path) -> Callable[[SampleConfig], Path]:
    """``generated(cfg)``: the release ``cfg`` generates, made once per run and shared
    by every test that asks for the same options (read-only: copy before changing
    it). ``workers`` is left out of the key: it does not change what is written."""
    def release(cfg: SampleConfig) -> Path:
        key = cfg.model_dump_json(exclude={"workers"})
        name = "gen-" + hashlib.sha256(key.encode()).hexdigest()[:12]
        return build_once(shared_root, name, lambda out: generate(out, cfg))
    return release


@pytest.fixture(scope="session")
def sample_config() -> SampleConfig:
    """The options the session's sample release was generated with."""
    return SAMPLE_CFG


@pytest.fixture(scope="session")
def sample_release(generated: Callable[[SampleConfig], Path]) -> Path:
    """A generated release with real videos (read-only: copy before changing it)."""
    return generated(SAMPLE_CFG)


@pytest.fixture
def mutable_release(sample_release: Path, tmp_path: Path) -> Path:
    """A copy of the sample release whose annotation files a test may edit.

    Videos are shared through a symlink (they are large and never edited here).
    """
    root = tmp_path / "release"
    root.mkdir()
    for item in sample_release.iterdir():
        if item.name == cb.VIDEOS_DIR:
            (root / item.name).symlink_to(item, target_is_directory=True)
        elif item.is_dir():
            shutil.copytree(item, root / item.name)
        else:
            shutil.copy2(item, root / item.name)
    return root


#: The shared server lives for the whole run: its periodic services that these tests
#: never need (schedules, late runs, pauses, cancellations, work-pool health) are off,
#: so it idles on less CPU (measured with these, the cleanup reconciler and analytics
#: off: 0.85 against 1.37 CPU-seconds a minute).
QUIET_SERVER = {f"PREFECT_SERVER_SERVICES_{name}_ENABLED": "false" for name in (
    "SCHEDULER", "LATE_RUNS", "PAUSE_EXPIRATIONS", "CANCELLATION_CLEANUP", "FOREMAN",
    "REPOSSESSOR")}


@pytest.fixture(scope="session")
def prefect_server(shared_root: Path, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[LocalPrefect]:
    """One real Prefect server (``prefect server start``) per test run, for the
    end-to-end tests that only run flows against it and do not interfere with each
    other: each ``bahfs extract`` they start reports its runs there instead of starting
    a server of its own (a server's start costs 15-25 CPU-seconds on this project's
    machines). Under xdist the first worker to ask starts it, every worker that asked
    is counted, and the last one to finish stops it (:func:`_shared_prefect`). A test
    that starts a Prefect worker on it stops that worker itself."""
    from flows.local import LocalPrefect

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        with LocalPrefect(tmp_path_factory.mktemp("prefect"), env=QUIET_SERVER) as server:
            yield server
        return
    with _shared_prefect(shared_root) as server:
        yield server


@contextmanager
def _shared_prefect(root: Path) -> Iterator[LocalPrefect]:
    """The run's shared Prefect server, started by the first worker that asks (in a
    session of its own, so it outlives that worker), its users counted in a file under
    a lock; the last user stops it (a later asker would start a new one)."""
    from flows.local import LocalPrefect

    home, state = root / "prefect-shared", root / "prefect-shared.json"
    with FileLock(str(root / "prefect-shared.lock")):
        info = json.loads(state.read_text()) if state.exists() else None
        if info is None:
            shutil.rmtree(home, ignore_errors=True)
            first = LocalPrefect(home, env=QUIET_SERVER)
            first.start_server()
            info = {"port": first.port, "pid": first.server_pid, "users": 0}
        info["users"] += 1
        state.write_text(json.dumps(info))
    try:
        yield LocalPrefect(home, port=info["port"], env=QUIET_SERVER)
    finally:
        with FileLock(str(root / "prefect-shared.lock")):
            info = json.loads(state.read_text())
            info["users"] -= 1
            if info["users"]:
                state.write_text(json.dumps(info))
            else:
                state.unlink()
                _stop_group(info["pid"])


def _stop_group(pid: int, wait_s: float = 20.0) -> None:
    """SIGTERM the process group of ``pid`` (a server started in a session of its
    own), SIGKILL it if it has not ended within ``wait_s``."""
    try:
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # still there (a zombie of a worker that ended counts too)
            if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] == "Z":
                return
            time.sleep(0.2)
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, FileNotFoundError):
        return


@dataclass(frozen=True)
class DemoRun:
    """What `bahfs demo` printed and left behind."""

    out: Path
    store: Path
    exit_code: int
    output: str
    seconds: float


@pytest.fixture(scope="session")
def demo_run(shared_root: Path) -> DemoRun:
    """`bahfs demo` once per run, on the TAUGHT_CFG batch placed in its inbox first
    (the demo takes a batch already there): a real Prefect server, deployment and worker
    extract face, logmel, audio and words; the learning tests train on its store (read
    it, never change it: copy first). What it printed is kept beside it."""
    from typer.testing import CliRunner

    from bahfs.cli import app

    def run_demo(out: Path) -> None:
        generate(out / "inbox" / "batch-001", TAUGHT_CFG)
        t0 = time.perf_counter()
        result = CliRunner().invoke(app, ["demo", "--out", str(out), "--epochs", "2"])
        (out / "demo-run.json").write_text(json.dumps({
            "exit_code": result.exit_code, "output": result.output,
            "seconds": time.perf_counter() - t0}))

    out = build_once(shared_root, "demo", run_demo)
    ran = json.loads((out / "demo-run.json").read_text())
    return DemoRun(out, out / "store", ran["exit_code"], ran["output"], ran["seconds"])


APP = Appearance((1.0, 0.97, 0.95), (200, 190, 170), (110, 80, 60))


def _plan(fps: float, seed: int) -> VideoPlan:
    return plan_video(np.random.default_rng(seed), 3, ah=True, fps=fps, max_seconds=14.0)


def _render(path: Path, fps: float, audio: bool, seed: int) -> None:
    write_video(path, _plan(fps, seed), APP, np.random.default_rng(seed), with_audio=audio)


_RENDERED = {"speech24": ("speech24.mp4", 24.0, True, 1),
             "fps30": ("fps30.mp4", 30.0, True, 2),
             "silent": ("noaudio.mp4", 24.0, False, 3)}


def _render_media(d: Path) -> None:
    d.mkdir(parents=True)
    for name, fps, audio, seed in _RENDERED.values():
        _render(d / name, fps, audio, seed)
    vfr = d / "vfr.mkv"  # 48 frames; a 0.5 s gap after frame 10
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=24:duration=2", "-vf",
                    "setpts='if(gt(N,10),N/24+0.5,N/24)/TB'", "-fps_mode", "vfr",
                    "-c:v", "libx264", str(vfr)], check=True)
    (d / "empty.mp4").write_bytes(b"")
    (d / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(50_000))


@pytest.fixture(scope="session")
def media(shared_root: Path) -> dict[str, tuple[Path, VideoPlan | None]]:
    """Small videos rendered once per run (read-only): speech at 24 and 30 fps, one
    without sound, a variable-frame-rate clip, an empty file and random bytes."""
    d = build_once(shared_root, "media", _render_media)
    out: dict[str, tuple[Path, VideoPlan | None]] = {
        key: (d / name, _plan(fps, seed)) for key, (name, fps, _, seed) in _RENDERED.items()}
    out["vfr"] = (d / "vfr.mkv", None)
    out["empty"] = (d / "empty.mp4", None)
    out["garbage"] = (d / "garbage.mp4", None)
    return out


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config
                            ) -> None:
    """Say in the summary when ``BAHFS_SKIP_WHISPERX=1`` let the whisperX tests skip, so a
    green run cannot hide that the whisperX path went untested."""
    if os.environ.get("BAHFS_SKIP_WHISPERX") != "1":
        return
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if "BAHFS_SKIP_WHISPERX" in str(getattr(r, "longrepr", ""))]
    terminalreporter.write_sep("=", "BAHFS_SKIP_WHISPERX=1", yellow=True, bold=True)
    if skipped:
        terminalreporter.write_line(
            f"BAHFS_SKIP_WHISPERX=1: {len(skipped)} whisperX tests skipped; the whisperX "
            "ASR backend was NOT tested (run `bash .ci/whisperx.sh` and unset it to test it)",
            yellow=True, bold=True)
    else:
        terminalreporter.write_line("BAHFS_SKIP_WHISPERX=1 is set, but no whisperX test "
                                    "was skipped for it (the environment exists, or none ran)")
