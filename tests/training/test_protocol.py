"""The training protocol: the epoch kept by validation, optimisers, schedules, the
paper's preset, early stopping and the fallback when there is no validation split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from bahfs.cli import app
from store.errors import ConfigError
from store.tables import read_table, write_table
from training.protocol import PRESETS, EpochSelector, build_optimizer, build_schedule, preset
from training.run import TrainConfig, evaluate, train

QUIET = {"log": lambda *_: None}


def _results(run: Path) -> dict[str, Any]:
    out: dict[str, Any] = json.loads((run / "results.json").read_text())
    return out


def test_the_kept_epoch_is_the_best_on_validation_and_model_pt_reproduces_it(
        synth: Path, tmp_path: Path) -> None:
    # an aggressive SGD run whose validation AP goes up and down: the best epoch is not
    # the last one (checked below), so keeping the last would fail this test
    run = train(TrainConfig(store=synth, model="mlp", modalities=("face", "audio"), epochs=6,
                            optimizer="sgd", lr=0.5, momentum=0.9, seed=1, out=tmp_path),
                **QUIET)
    res = _results(run)
    history = res["history"]
    aps = [h["val_ap_pos"] for h in history]
    assert len(aps) == 6 and all(0 < a <= 1 for a in aps)
    assert {"val_avg_f1", "val_f1_pos", "val_f1_neg", "val_ap_pos_threshold_free"} <= set(
        history[0])
    best = int(np.argmax(aps))
    assert res["selected_epoch"] == best != len(aps) - 1, aps
    assert res["selection"]["rule"] == "val_ap_pos" and res["selection"]["reason"] is None
    val = res["splits"]["val"]["frame"]
    assert val["ap_pos"] == history[best]["val_ap_pos"]
    assert val["avg_f1"] == history[best]["val_avg_f1"]
    again = evaluate(run, "val")["frame"]  # model.pt holds the kept epoch: exactly
    assert {k: again[k] for k in ("ap_pos", "avg_f1", "f1_pos", "w_f1")} == {
        k: val[k] for k in ("ap_pos", "avg_f1", "f1_pos", "w_f1")}


def test_select_last_and_by_avg_f1(synth: Path, tmp_path: Path) -> None:
    cfg = dict(store=synth, model="mlp", modalities=("face", "audio"), epochs=6,
               optimizer="sgd", lr=0.5, seed=1)
    last = _results(train(TrainConfig(**cfg, select="last", out=tmp_path / "a"), **QUIET))
    assert last["selected_epoch"] == 5 and "val_ap_pos" not in last["history"][0]
    f1 = _results(train(TrainConfig(**cfg, select="val_avg_f1", out=tmp_path / "b"), **QUIET))
    scores = [h["val_avg_f1"] for h in f1["history"]]
    assert f1["selected_epoch"] == int(np.argmax(scores))
    assert f1["splits"]["val"]["frame"]["avg_f1"] == max(scores)


def test_patience_stops_when_validation_stops_improving(synth: Path, tmp_path: Path) -> None:
    # a learning rate too small to move float32 weights: validation never improves
    res = _results(train(TrainConfig(store=synth, model="mlp", modalities=("face",),
                                     epochs=10, optimizer="sgd", momentum=0.0, lr=1e-12,
                                     patience=2, out=tmp_path), **QUIET))
    assert len(res["history"]) == 3 and res["selected_epoch"] == 0
    assert res["selection"]["epochs_run"] == 3


def test_without_a_validation_split_the_last_epoch_is_kept_and_said(
        synth: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(synth, store)
    videos = read_table(store, "videos")
    write_table(store, "videos", videos.with_columns(
        pl.when(pl.col("split") == "val").then(pl.lit("train")).otherwise(pl.col("split"))
        .alias("split")))
    lines: list[str] = []
    run = train(TrainConfig(store=store, model="mlp", modalities=("face",), epochs=2,
                            out=tmp_path / "runs"), log=lines.append)
    res = _results(run)
    assert res["selected_epoch"] == 1 and res["selection"]["rule"] == "last"
    assert "no validation split" in res["selection"]["reason"]
    assert any("no validation split" in line and "last epoch" in line for line in lines)
    assert "error" in res["splits"]["val"]


def test_optimisers_and_schedules() -> None:
    params = [torch.nn.Parameter(torch.zeros(2))]
    sgd = build_optimizer("sgd", params, lr=0.1, weight_decay=1e-4, momentum=0.9,
                          nesterov=True)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"]
    assert isinstance(build_optimizer("adam", params, lr=0.1, weight_decay=0),
                      torch.optim.Adam)
    assert isinstance(build_optimizer("adamw", params, lr=0.1, weight_decay=0),
                      torch.optim.AdamW)

    def rates(name: str) -> list[float]:
        opt = build_optimizer("sgd", [torch.nn.Parameter(torch.zeros(1))], lr=1.0,
                              weight_decay=0)
        sched = build_schedule(name, opt, epochs=4, step_size=2, gamma=0.1)
        out = []
        for _ in range(4):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            if sched is not None:
                sched.step()
        return out

    assert rates("none") == [1.0] * 4
    assert rates("step") == pytest.approx([1.0, 1.0, 0.1, 0.1])
    assert rates("cosine") == pytest.approx([1.0, 0.8535534, 0.5, 0.1464466])
    with pytest.raises(ConfigError, match="unknown optimizer"):
        build_optimizer("lbfgs", params, lr=0.1, weight_decay=0)
    with pytest.raises(ConfigError, match="unknown preset"):
        preset("papper")


def test_selector_ignores_nan_and_keeps_the_earliest_of_a_tie() -> None:
    model = torch.nn.Linear(1, 1)
    sel = EpochSelector("val_ap_pos")
    for epoch, ap in enumerate([float("nan"), 0.5, 0.7, 0.7, float("nan"), 0.6]):
        sel.offer({"epoch": epoch, "val_ap_pos": ap}, model)
    assert sel.best is not None and sel.best["epoch"] == 2


def test_the_paper_preset_from_the_cli(synth: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["train", str(synth), "--preset", "paper", "--model",
                                      "mlp", "--modalities", "face", "--epochs", "1",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "all-negative baseline" in result.output and "kept epoch 1 of 1" in result.output
    cfg = _results(next(tmp_path.iterdir()))["config"]
    paper = {**PRESETS["paper"], "epochs": 1}  # an option beside the preset wins
    assert {k: cfg[k] for k in paper} == paper
    assert (cfg["window"], cfg["hop"], cfg["batch_size"], cfg["optimizer"], cfg["lr"]) == (
        696, 48, 4, "sgd", 0.008)
    assert cfg["preset"] == "paper"
    bad = CliRunner().invoke(app, ["train", str(synth), "--optimizer", "rmsprop",
                                   "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "optimizer" in bad.output
