"""Shared fixtures: one small generated release and a few small videos, rendered once
per test session."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bahfs.sample.generate import SampleConfig, generate
from bahfs.sample.render import Appearance, write_video
from bahfs.sample.script import VideoPlan, plan_video
from store.release import codebook as cb

SAMPLE_CFG = SampleConfig(participants=4, seed=7, max_questions=2, max_seconds=14.0, workers=2)
# the demo's batch, also the release the learning tests train on: 10 participants (one
# declines consent), 1-2 answers each, 8 fps: 13 videos, train 7 / val 2 / test 4 (2
# with A/H); a seed whose test split holds both kinds of video
TAUGHT_CFG = SampleConfig(participants=10, seed=8, max_questions=2, max_seconds=14.0,
                          fps=8.0, ah_rate=0.7, workers=2)


@pytest.fixture(scope="session")
def sample_config() -> SampleConfig:
    """The options the session's sample release was generated with."""
    return SAMPLE_CFG


@pytest.fixture(scope="session")
def sample_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated release with real videos (read-only: copy before changing it)."""
    root = tmp_path_factory.mktemp("release")
    generate(root, SAMPLE_CFG)
    return root


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


@dataclass(frozen=True)
class DemoRun:
    """What `bahfs demo` printed and left behind."""

    out: Path
    store: Path
    exit_code: int
    output: str
    seconds: float


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """`bahfs demo` once per session, on the TAUGHT_CFG batch placed in its inbox first
    (the demo takes a batch already there): a real Prefect server, deployment and worker
    extract face, logmel, audio and words; the learning tests train on its store."""
    from typer.testing import CliRunner

    from bahfs.cli import app

    out = tmp_path_factory.mktemp("demo")
    generate(out / "inbox" / "batch-001", TAUGHT_CFG)
    t0 = time.perf_counter()
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--epochs", "2"])
    return DemoRun(out, out / "store", result.exit_code, result.output,
                   time.perf_counter() - t0)


APP = Appearance((1.0, 0.97, 0.95), (200, 190, 170), (110, 80, 60))


def _render(path: Path, fps: float, audio: bool, seed: int) -> tuple[Path, VideoPlan]:
    plan = plan_video(np.random.default_rng(seed), 3, ah=True, fps=fps, max_seconds=14.0)
    write_video(path, plan, APP, np.random.default_rng(seed), with_audio=audio)
    return path, plan


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, VideoPlan | None]]:
    d = tmp_path_factory.mktemp("media")
    out: dict[str, tuple[Path, VideoPlan | None]] = {
        "speech24": _render(d / "speech24.mp4", 24.0, True, 1),
        "fps30": _render(d / "fps30.mp4", 30.0, True, 2),
        "silent": _render(d / "noaudio.mp4", 24.0, False, 3),
    }
    vfr = d / "vfr.mkv"  # 48 frames; a 0.5 s gap after frame 10
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=24:duration=2", "-vf",
                    "setpts='if(gt(N,10),N/24+0.5,N/24)/TB'", "-fps_mode", "vfr",
                    "-c:v", "libx264", str(vfr)], check=True)
    out["vfr"] = (vfr, None)
    (d / "empty.mp4").write_bytes(b"")
    out["empty"] = (d / "empty.mp4", None)
    (d / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(50_000))
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
