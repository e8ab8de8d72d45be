"""Training and evaluation end to end on a store with a planted A/H signal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bahfs.cli import app
from store.errors import ConfigError
from training.models import build_model
from training.run import TrainConfig, evaluate, train


def test_tcn_finds_the_planted_signal(synth: Path, tmp_path: Path) -> None:
    run = train(TrainConfig(store=synth, model="tcn", modalities=("face", "audio"), epochs=3,
                            out=tmp_path), log=lambda *_: None)
    results = json.loads((run / "results.json").read_text())
    test = results["splits"]["test"]
    assert test["frame"]["ap_pos"] > 2 * test["positive_rate"]
    assert test["frame"]["ap_pos"] > 0.6 and test["frame"]["avg_f1"] > 0.7
    assert set(results["feature_sets"]) == {"face", "audio"}
    assert results["feature_sets"]["face"]["model_sha256"] == "5" * 64
    again = evaluate(run, "test")
    assert again["frame"]["ap_pos"] == pytest.approx(test["frame"]["ap_pos"])
    assert (run / "eval_test.json").is_file() and (run / "model.pt").is_file()


def test_same_seed_same_result(synth: Path, tmp_path: Path) -> None:
    cfg = dict(store=synth, model="mlp", modalities=("face",), epochs=1)
    a = train(TrainConfig(**cfg, out=tmp_path / "a"), log=lambda *_: None)
    b = train(TrainConfig(**cfg, out=tmp_path / "b"), log=lambda *_: None)
    ra = json.loads((a / "results.json").read_text())["splits"]["test"]["frame"]
    rb = json.loads((b / "results.json").read_text())["splits"]["test"]["frame"]
    assert ra == rb


@pytest.mark.parametrize("name", ["mlp", "tcn", "fusion_concat", "fusion_attention"])
def test_every_model_maps_windows_to_frame_logits(name: str) -> None:
    import torch
    model = build_model(name, {"face": 6, "audio": 3}, hidden=8)
    out = model({"face": torch.randn(2, 20, 6), "audio": torch.randn(2, 20, 3)})
    assert out.shape == (2, 20, 2)


def test_bad_model_choices() -> None:
    with pytest.raises(ConfigError, match="unknown model"):
        build_model("transformer", {"face": 4})
    with pytest.raises(ConfigError, match="two or more"):
        build_model("fusion_concat", {"face": 4})


def test_cli_train_and_evaluate(synth: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(synth), "--model", "fusion_attention",
                                 "--modalities", "face,audio", "--epochs", "1",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "ap_pos" in result.output and "video" in result.output
    run = next(tmp_path.iterdir())
    result = runner.invoke(app, ["evaluate", str(run), "--split", "val"])
    assert result.exit_code == 0, result.output
    assert (run / "eval_val.json").is_file()
    result = runner.invoke(app, ["evaluate", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "not a run directory" in result.output
