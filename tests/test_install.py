"""The installed packages are not shadowed by same-named data folders; the install
chooses exactly one ONNX Runtime (CPU or GPU)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def test_a_data_folder_named_store_does_not_shadow_the_package(tmp_path: Path) -> None:
    (tmp_path / "store" / "tables").mkdir(parents=True)  # e.g. `bahfs ingest DATASET store`
    script = tmp_path / "run.py"
    script.write_text("from store.tables import read_table\nprint('ok')\n")
    res = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr


# --- ONNX Runtime: one of onnxruntime / onnxruntime-gpu, chosen by .ci/setup.sh ---

ROOT = Path(__file__).resolve().parents[1]
RUNTIMES = {"onnxruntime", "onnxruntime-gpu"}
# packages whose extras pull an ONNX Runtime (sentence-transformers[onnx],
# optimum-onnx[onnxruntime], optimum[onnxruntime-gpu], ...)
PULLERS = {"sentence-transformers", "optimum-onnx", "optimum", "transformers"}


def _project() -> dict[str, Any]:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        project: dict[str, Any] = tomllib.load(fh)["project"]
    return project


def _names(reqs: list[str]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, reqs)}


def test_core_dependencies_never_name_an_onnx_runtime() -> None:
    core = _names(_project()["dependencies"])
    assert not RUNTIMES & core.keys()
    for name in PULLERS & core.keys():
        assert not core[name].extras, f"{name}{sorted(core[name].extras)} pulls a runtime"


def test_the_cpu_and_gpu_extras_each_bring_one_runtime() -> None:
    extras = _project()["optional-dependencies"]
    cpu, gpu = _names(extras["cpu"]), _names(extras["gpu"])
    assert "onnxruntime" in cpu and "onnxruntime-gpu" not in cpu
    assert "onnxruntime-gpu" in gpu and "onnxruntime" not in gpu
    assert {"cuda", "cudnn"} <= gpu["onnxruntime-gpu"].extras
    for name, reqs in extras.items():
        if name not in ("cpu", "gpu"):
            assert not RUNTIMES & _names(reqs).keys(), f"extra {name} names a runtime"


def _choose(tmp_path: Path, gpu_env: str | None,
            smi: str | None) -> subprocess.CompletedProcess[str]:
    """Runs `.ci/setup.sh --print-runtime` with PATH holding only grep and, when
    ``smi`` is given, a fake nvidia-smi printing it (``None``: no nvidia-smi at all)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "grep").symlink_to(shutil.which("grep") or "/bin/grep")
    if smi is not None:
        fake = bindir / "nvidia-smi"
        code = 0 if smi.startswith("GPU") else 6  # nvidia-smi's exit status without GPUs
        fake.write_text(f"#!/bin/sh\n[ \"$1\" = -L ] || exit 9\necho '{smi}'\nexit {code}\n")
        fake.chmod(0o755)
    env = {"PATH": str(bindir)}
    if gpu_env is not None:
        env["BAHFS_GPU"] = gpu_env
    bash = shutil.which("bash") or "/bin/bash"
    return subprocess.run([bash, str(ROOT / ".ci" / "setup.sh"), "--print-runtime"],
                          env=env, capture_output=True, text=True, timeout=60)


H100 = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0a1b2c3d-0000-1111-2222-333344445555)"


@pytest.mark.parametrize(("gpu_env", "smi", "want"), [
    (None, H100, "gpu"),  # unset: auto
    ("auto", H100, "gpu"),
    ("auto", "No devices were found", "cpu"),
    ("auto", None, "cpu"),
    (None, None, "cpu"),
    ("0", H100, "cpu"),  # forced CPU on a GPU machine
    ("1", None, "gpu"),  # forced GPU (e.g. building an image on a machine without one)
])
def test_setup_chooses_the_runtime_from_bahfs_gpu_and_nvidia_smi(
        tmp_path: Path, gpu_env: str | None, smi: str | None, want: str) -> None:
    res = _choose(tmp_path, gpu_env, smi)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == want


def test_setup_refuses_an_unknown_bahfs_gpu(tmp_path: Path) -> None:
    res = _choose(tmp_path, "yes", H100)
    assert res.returncode == 2
    assert "BAHFS_GPU=yes" in res.stderr and not res.stdout


def test_setup_installs_the_chosen_runtime_extra_and_stamps_the_choice() -> None:
    script = (ROOT / ".ci" / "setup.sh").read_text()
    assert """pip install -q -e ".[dev,$runtime,prosody]\"""" in script  # prosody: opensmile
    assert "'.[dev]'" not in script
    assert 'echo "runtime=$runtime"' in script  # a switch changes the install stamp
