"""The installed packages are not shadowed by same-named data folders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_a_data_folder_named_store_does_not_shadow_the_package(tmp_path: Path) -> None:
    (tmp_path / "store" / "tables").mkdir(parents=True)  # e.g. `--store store`
    script = tmp_path / "run.py"
    script.write_text("from store.tables import read_table\nprint('ok')\n")
    res = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
