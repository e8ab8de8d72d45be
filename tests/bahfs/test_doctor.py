"""``bahfs doctor``: one line per check, each failure with its fix, exit 1 when a run
could not go. The plan named is ``logmel`` alone (no model file to load), so the
checks run in seconds."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bahfs.cli import app

runner = CliRunner()
#: no Prefect server named: the Prefect check passes, whatever the caller's environment
NO_PREFECT = {"PREFECT_API_URL": None, "PREFECT_API_KEY": None,
              "PREFECT_API_AUTH_STRING": None}


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text("logmel: {}\n")
    return path


def test_doctor_names_ffmpeg_missing_from_path_and_exits_1(plan: Path, tmp_path: Path
                                                           ) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    result = runner.invoke(app, ["doctor", "--plan", str(plan)],
                           env={**NO_PREFECT, "PATH": str(bare)})
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert "✘ ffmpeg: not found on PATH" in lines and "✘ ffprobe: not found on PATH" in lines
    assert lines[lines.index("✘ ffmpeg: not found on PATH") + 1] == \
        "    fix: apt-get install ffmpeg (or put ffmpeg on PATH)"
    assert any(line.startswith("✔ model logmel: logmel-") for line in lines)
    assert "2 thing(s) a run needs are missing" in result.output

    ready = runner.invoke(app, ["doctor", "--plan", str(plan)], env=NO_PREFECT)
    assert ready.exit_code == 0, ready.output
    assert any(line.startswith("✔ ffmpeg: ") and "ffmpeg version" in line
               for line in ready.output.splitlines())
    assert "✔ Prefect API: PREFECT_API_URL not set" in ready.output
    assert "ready for a run" in ready.output


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot write: mode 0555, or for root (whom modes do not
    stop) a tmpfs remounted read-only; a skip where neither can be had."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0:
        yield mnt
        return
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"root, and no tmpfs can be mounted here: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _freeze(folder: Path) -> None:
    if os.geteuid() != 0:
        for p in [folder, *folder.rglob("*")]:
            if p.is_dir():
                p.chmod(0o555)
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


def test_doctor_on_a_store_that_cannot_be_written(small_store: Path, plan: Path,
                                                  read_only: Path) -> None:
    store = read_only / "store"
    shutil.copytree(small_store, store)
    fine = runner.invoke(app, ["doctor", str(store), "--plan", str(plan)], env=NO_PREFECT)
    assert fine.exit_code == 0, fine.output
    assert f"✔ store writable: {store} (access: group)" in fine.output
    _freeze(read_only)
    try:
        result = runner.invoke(app, ["doctor", str(store), "--plan", str(plan)],
                               env=NO_PREFECT)
    finally:
        if os.geteuid() != 0:
            for p in [read_only, *read_only.rglob("*")]:
                if p.is_dir():
                    p.chmod(0o755)
    assert result.exit_code == 1, result.output
    assert f"✘ store writable: cannot write {store}" in result.output
    assert "fix: run as the store's owner or a member of its group" in result.output
    assert "1 thing(s) a run needs are missing" in result.output


def test_doctor_names_a_prefect_server_that_does_not_answer(plan: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on: bound, then closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    result = runner.invoke(app, ["doctor", "--plan", str(plan)],
                           env={**NO_PREFECT, "PREFECT_API_URL": url})
    assert result.exit_code == 1, result.output
    assert f"✘ Prefect API: {url} unreachable" in result.output
    assert "fix: start the server (docs/operations.md) or unset PREFECT_API_URL" in \
        result.output


def test_doctor_names_a_dask_scheduler_out_of_reach_and_tls_without_certificates(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bahfs.doctor import check_dask
    from flows.placement import DASK_ADDRESS_ENV

    monkeypatch.delenv(DASK_ADDRESS_ENV, raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gone = check_dask(f"tcp://127.0.0.1:{port}", timeout_s=1.0)
    assert not gone.ok and gone.needed and "unreachable" in gone.detail
    assert gone.fix == "start the scheduler (docs/operations.md, Dask)"
    tls = check_dask(f"tls://127.0.0.1:{port}", timeout_s=1.0)
    assert not tls.ok and tls.fix  # refused before connecting: no certificates anywhere
    assert check_dask(None).ok and "local cluster" in check_dask(None).detail
