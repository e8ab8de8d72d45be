"""The code base stays ruff- and mypy-clean (the standards, checked on every run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("tool", [["ruff", "check", "."], ["mypy"]])
def test_tool_is_clean(tool: list[str]) -> None:
    exe = Path(sys.executable).parent / tool[0]
    proc = subprocess.run([str(exe), *tool[1:]], cwd=ROOT, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_store_never_imports_onnxruntime_or_torch() -> None:
    for path in (ROOT / "store").rglob("*.py"):
        text = path.read_text()
        for banned in ("import onnxruntime", "import torch", "from torch", "from onnxruntime"):
            assert banned not in text, f"{path} imports {banned.split()[-1]}"
