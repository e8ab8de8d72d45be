"""The README's headline commands, run as a user runs them: `bahfs plan`, a plan through
`bahfs extract-video`, `bahfs extract` and the `extract` deployment's `plan`
parameter, the `ingest` deployment, and `bahfs zeroshot --help`. (`bahfs demo`:
tests/bahfs/test_demo.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bahfs.cli import app
from flows.local import LocalPrefect
from store.reader import FeatureReader
from store.tables import read_table, read_table_or_empty
from training.data import resolve_sources

# two feature sets of one extractor side by side: the cheapest real plan
PLAN = "logmel: {}\nlogmel_fine:\n  extractor: logmel\n  n_mels: 96\n"


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plan") / "plan.yaml"
    path.write_text(PLAN)
    return path


def test_plan_prints_each_feature_set_of_a_plan(plan_file: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["plan", "--plan", str(plan_file)])
    assert result.exit_code == 0, result.output
    ids = [line.split()[0] for line in result.output.splitlines()
           if "(extractor logmel)" in line]
    assert [i.rsplit("-", 1)[0] for i in ids] == ["logmel", "logmel_fine"]
    assert "logmel: float16 (frames, 64)" in result.output
    assert "logmel: float16 (frames, 96)" in result.output
    plain = runner.invoke(app, ["plan", "--extractors", "logmel"])
    assert plain.exit_code == 0 and plain.output.split()[0] == ids[0]  # same set, same id
    both = runner.invoke(app, ["plan", "--plan", str(plan_file), "--extractors", "logmel"])
    assert both.exit_code != 0 and "not both" in both.output


def test_extract_video_with_a_plan(media: dict[str, tuple[Path, object]], plan_file: Path,
                                   tmp_path: Path) -> None:
    out = tmp_path / "one.zarr"
    result = CliRunner().invoke(app, ["extract-video", str(media["speech24"][0]),
                                      "--out", str(out), "--plan", str(plan_file)])
    assert result.exit_code == 0, result.output
    reader = FeatureReader(out)
    n = reader.n_frames("speech24")
    assert reader.video(reader.resolve("logmel"), "speech24")["logmel"].shape == (n, 64)
    assert reader.video(reader.resolve("logmel_fine"), "speech24")["logmel"].shape == (n, 96)


def test_zeroshot_help() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["zeroshot", "--help"])
    assert result.exit_code == 0 and "export" in result.output and "score" in result.output
    for sub in ("export", "score"):
        assert runner.invoke(app, ["zeroshot", sub, "--help"]).exit_code == 0


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ingest_deployment_plan_parameter_and_bahfs_extract_with_a_plan(
        sample_release: Path, plan_file: Path, tmp_path: Path,
        prefect_server: LocalPrefect) -> None:
    """One Prefect server (the test worker's shared one) for three runs: the `ingest`
    deployment (tables, no features), the `extract` deployment with `-p plan=...`, and
    `bahfs extract --plan` reporting to the same server."""
    tables_only, by_deployment, by_cli = (tmp_path / n for n in ("a", "b", "c"))
    prefect = prefect_server
    prefect.deploy("extract", "ingest")
    worker = prefect.start_worker()
    try:
        prefect.run("ingest/ingest", {"source": str(sample_release),
                                      "store": str(tables_only)}, timeout_s=600)
        videos = read_table(tables_only, "videos")
        assert videos.height > 0
        assert read_table_or_empty(tables_only, "extracted").height == 0  # no features

        prefect.run("extract/extract", {"source": str(sample_release),
                                        "store": str(by_deployment),
                                        "plan": str(plan_file), "dask_workers": 1},
                    timeout_s=600)
        extracted = read_table(by_deployment, "extracted")
        fsets = sorted(set(extracted["feature_set"].to_list()))
        assert [f.rsplit("-", 1)[0] for f in fsets] == ["logmel", "logmel_fine"]
        assert extracted.height == 2 * read_table(by_deployment, "videos").height
        dims = {s.modality: s.dim for s in resolve_sources(by_deployment,
                                                           ["logmel", "logmel_fine"])}
        assert dims == {"logmel": 64, "logmel_fine": 96}

        bahfs = str(Path(sys.executable).with_name("bahfs"))
        res = subprocess.run([bahfs, "extract", str(sample_release), str(by_cli),
                              "--plan", str(plan_file), "--workers", "1"],
                             env={**os.environ, "PREFECT_API_URL": prefect.api_url,
                                  "PREFECT_HOME": str(prefect.home)},
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "quarantined 0" in res.stdout
        assert sorted(set(read_table(by_cli, "extracted")["feature_set"].to_list())) == fsets
    finally:  # the server stays for the other tests; its worker goes with this one
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
