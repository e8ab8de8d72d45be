"""Extractors from other packages: the tiny ``bahfs-peak`` package (tests/plugin/) is
installed into a temporary folder, registers ``peak`` through the ``bahfs.extractors``
entry point, passes bahfs's contract suite in its own test run, and is extracted into
a store by ``bahfs extract --extractors peak`` and by a plan."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from extractors.base import LEFT_OUT, REGISTRY, get_extractor
from extractors.plugins import _load
from store.errors import ConfigError

if TYPE_CHECKING:
    from flows.local import LocalPrefect

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "tests" / "plugin" / "bahfs-peak"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a process that has bahfs-peak installed (pip, into a folder
    of its own: the test environment itself is left as it was)."""
    site = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", "--target", str(site), str(PLUGIN)],
                   check=True, capture_output=True, env={**os.environ, "TMPDIR": str(build)})
    path = os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path.rstrip(os.pathsep)}


def _python(env: dict[str, str], code: str) -> str:
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


def test_the_entry_point_registers_the_plugin(plugin_env: dict[str, str]) -> None:
    out = _python(plugin_env, "import extractors; e = extractors.get_extractor('peak')(); "
                              "print(type(e).__module__, e.spec().id)")
    module, fs_id = out.split()
    assert module == "bahfs_peak" and fs_id.startswith("peak-")
    assert "peak" not in REGISTRY  # this process never installed it


def test_the_plugin_passes_the_contract_suite_in_its_own_run(
        plugin_env: dict[str, str], tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-c", str(PLUGIN / "pyproject.toml"), "--rootdir", str(PLUGIN),
                          "--basetemp", str(tmp_path / "t"), str(PLUGIN / "contract_check.py")],
                         env=plugin_env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "6 passed" in res.stdout, res.stdout  # 5 of the contract, 1 of its own


def test_a_broken_plugin_is_left_out_saying_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    monkeypatch.setattr("extractors.base.LEFT_OUT", dict(LEFT_OUT))
    for value, why in (("no_such_module_x:Thing", "failed to import: ModuleNotFoundError"),
                       ("json:dumps", "is not an extractors.base.Extractor subclass")):
        assert why in _load(EntryPoint("gone", value, "bahfs.extractors"))
    taken = _load(EntryPoint("words", "extractors.prosody:ProsodyExtractor",
                             "bahfs.extractors"))
    assert "the class's name is 'prosody'" in taken
    import extractors.base as base

    base.LEFT_OUT["gone"] = "entry point gone = no_such_module_x:Thing failed to import"
    with pytest.raises(ConfigError, match=r"installed plugin that was left out.*no_such_module"):
        get_extractor("gone")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_bahfs_extract_stores_the_plugin_by_name_and_by_plan(
        sample_release: Path, plugin_env: dict[str, str], tmp_path: Path,
        prefect_server: LocalPrefect) -> None:
    from store.reader import FeatureReader
    from store.tables import read_table

    store = tmp_path / "store"
    plan = tmp_path / "plan.yaml"
    plan.write_text("peak_wide:\n  extractor: peak\n  window_s: 0.5\n")
    bahfs = [sys.executable, "-c", "from bahfs.cli import app; app()"]
    env = {**prefect_server.env, "PYTHONPATH": plugin_env["PYTHONPATH"]}
    for how in (["--extractors", "peak"], ["--plan", str(plan)]):
        res = subprocess.run([*bahfs, "extract", str(sample_release), str(store),
                              *how, "--workers", "1"], env=env, capture_output=True,
                             text=True, timeout=600)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        assert "quarantined 0" in res.stdout, res.stdout[-3000:]
    videos = read_table(store, "videos")
    reader = FeatureReader(store)
    narrow, wide = reader.resolve("peak"), reader.resolve("peak_wide")
    assert narrow != wide
    assert sorted(reader.extracted(narrow)) == sorted(reader.extracted(wide)) == \
        sorted(videos["video_id"].to_list())
    for vid, n in videos.select("video_id", "n_frames").iter_rows():
        a, b = reader.video(narrow, vid), reader.video(wide, vid)
        assert a["peak_db"].shape == (n,) and a["has_audio"].any()
        assert (b["peak_db"][a["has_audio"]] >= a["peak_db"][a["has_audio"]] - 1e-3).all()
        assert not np.array_equal(a["zcr"], b["zcr"])
