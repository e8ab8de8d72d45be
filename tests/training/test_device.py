"""The device setting in training and evaluation: every decision tested on the CPU
(CUDA simulated where it must be seen), and one GPU test where there is a GPU."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from bahfs.cli import app
from store.errors import ConfigError, DeviceError
from training.data import WindowDataset, resolve_sources
from training.device import device_errors, pins, to_device, torch_device
from training.run import TrainConfig, evaluate, make_loader, train

QUIET = {"log": lambda *_: None}


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch sees no GPU (as on this machine, also where there is one)."""
    monkeypatch.delenv("BAHFS_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture
def one_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch sees one GPU (simulated: only the decision is tested, nothing runs on it)."""
    monkeypatch.delenv("BAHFS_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Fake GPU")


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "bahfs.training" and r.levelno == logging.WARNING]


def test_cpu_is_the_cpu_without_a_word(no_gpu: None, caplog: pytest.LogCaptureFixture
                                       ) -> None:
    with caplog.at_level(logging.WARNING, logger="bahfs.training"):
        assert torch_device("cpu") == torch.device("cpu")
        assert torch_device(" CPU ") == torch.device("cpu")
    assert _warnings(caplog) == []


@pytest.mark.parametrize("asked", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_without_a_gpu_is_a_clear_error(no_gpu: None, asked: str) -> None:
    with pytest.raises(DeviceError) as err:
        torch_device(asked)
    text = str(err.value)
    assert f"device cuda:{asked[5:] or 0} asked for" in text
    assert "no CUDA device" in text and "torch.cuda.is_available() is False" in text
    assert "--device cpu" in text
    assert isinstance(err.value, RuntimeError)


def test_auto_without_a_gpu_is_the_cpu_with_one_warning(
        no_gpu: None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bahfs.training"):
        assert torch_device("auto") == torch.device("cpu")
    (warning,) = _warnings(caplog)
    assert "no GPU found" in warning and "run on the CPU" in warning


def test_a_seen_gpu_is_used(one_gpu: None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bahfs.training"):
        assert torch_device("auto") == torch.device("cuda", 0)
        assert torch_device("cuda") == torch.device("cuda", 0)
        assert torch_device("cuda:0") == torch.device("cuda", 0)
    assert _warnings(caplog) == []
    with pytest.raises(DeviceError, match=r"cuda:1 asked for.*1 CUDA device \(cuda:0 Fake GPU"
                       r"\).*expected: cuda:0 to cuda:0"):
        torch_device("cuda:1")


@pytest.mark.parametrize("bad", ["gpu", "cpu:1", "auto:0", "cuda:x", "mps", "cuda:-1"])
def test_a_bad_setting_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="auto, cpu, cuda or cuda:N"):
        torch_device(bad)


def test_the_environment_is_the_default(no_gpu: None, monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("BAHFS_DEVICE", "cpu")
    with caplog.at_level(logging.WARNING, logger="bahfs.training"):
        assert torch_device() == torch.device("cpu")
    assert _warnings(caplog) == []  # cpu asked for: no fallback to warn about
    monkeypatch.setenv("BAHFS_DEVICE", "cuda:2")
    with pytest.raises(DeviceError, match="cuda:2"):
        torch_device()
    assert torch_device("cpu") == torch.device("cpu")  # the option wins
    monkeypatch.setenv("BAHFS_DEVICE", "tpu")
    with pytest.raises(ConfigError, match="tpu"):
        torch_device()


def test_batches_pin_and_copy_only_for_cuda(synth: Path) -> None:
    batch = {"face": torch.ones(2, 3), "mask": torch.ones(2, dtype=torch.bool)}
    moved = to_device(batch, ["face"], torch.device("cpu"))
    assert list(moved) == ["face"] and moved["face"] is batch["face"]
    assert pins(torch.device("cuda", 0)) and not pins(torch.device("cpu"))
    ds = WindowDataset(synth, resolve_sources(synth, ["face"]), length=96, hop=48,
                       split="train")
    cfg = TrainConfig(store=synth, modalities=("face",))
    assert make_loader(ds, cfg, train=True, device=torch.device("cuda", 0)).pin_memory
    assert not make_loader(ds, cfg, train=True, device=torch.device("cpu")).pin_memory
    assert not make_loader(ds, cfg, train=True).pin_memory


def test_cuda_failures_become_device_errors() -> None:
    cuda = torch.device("cuda", 0)
    with pytest.raises(DeviceError, match="device cuda:0 out of memory: CUDA out of"), \
            device_errors(cuda):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
    with pytest.raises(DeviceError, match="device cuda:0 failed: CUDA error: an illegal"), \
            device_errors(cuda):
        raise RuntimeError("CUDA error: an illegal memory access was encountered\nmore")
    with pytest.raises(RuntimeError, match="shape mismatch"), device_errors(cuda):
        raise RuntimeError("shape mismatch")  # not the device's fault: unchanged
    with pytest.raises(torch.OutOfMemoryError), device_errors(torch.device("cpu")):
        raise torch.OutOfMemoryError("out of memory")  # the CPU's own, unchanged
    with pytest.raises(ConfigError), device_errors(cuda):
        raise ConfigError("bahfs errors pass through")


def test_cpu_training_is_todays_training_and_records_the_device(
        synth: Path, tmp_path: Path, no_gpu: None, caplog: pytest.LogCaptureFixture) -> None:
    cfg = dict(store=synth, model="mlp", modalities=("face",), epochs=1)
    with caplog.at_level(logging.WARNING, logger="bahfs.training"):
        cpu = train(TrainConfig(**cfg, device="cpu", out=tmp_path / "cpu"), **QUIET)
        assert _warnings(caplog) == []
        auto = train(TrainConfig(**cfg, out=tmp_path / "auto"), **QUIET)  # default: auto
    assert len(_warnings(caplog)) == 1  # one warning for the whole run
    a, b = (json.loads((r / "results.json").read_text()) for r in (cpu, auto))
    assert a["splits"] == b["splits"] and a["history"][0]["loss"] == b["history"][0]["loss"]
    assert a["config"]["device"] == b["config"]["device"] == "cpu"
    assert json.loads((cpu / "config.json").read_text())["device"] == "cpu"
    wa, wb = (torch.load(r / "model.pt", weights_only=True)["state_dict"] for r in (cpu, auto))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    again = evaluate(cpu, "test", device="cpu")
    assert again["device"] == "cpu"
    assert again["frame"] == a["splits"]["test"]["frame"]
    assert json.loads((cpu / "eval_test.json").read_text())["device"] == "cpu"
    with pytest.raises(DeviceError, match="cuda:0"):
        evaluate(cpu, "test", device="cuda")
    with pytest.raises(ConfigError):
        train(TrainConfig(**cfg, device="gpu", out=tmp_path / "bad"), **QUIET)
    assert not (tmp_path / "bad").exists()  # refused before anything is written


def test_cli_refuses_cuda_without_a_gpu(synth: Path, tmp_path: Path, no_gpu: None,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(synth), "--model", "mlp", "--modalities", "face",
                                 "--epochs", "1", "--out", str(tmp_path), "--device", "cuda"])
    assert result.exit_code == 3, result.output  # the machine: no GPU here
    assert "error: device cuda:0 asked for, but torch sees no CUDA device" in result.stderr
    assert not tmp_path.exists() or not any(tmp_path.iterdir())  # no run started
    result = runner.invoke(app, ["train", str(synth), "--device", "gpu0"])
    assert result.exit_code == 2 and "auto, cpu, cuda or cuda:N" in result.stderr
    monkeypatch.setenv("BAHFS_DEVICE", "cuda:1")
    result = runner.invoke(app, ["personalise", str(synth), "--modalities", "face",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 3 and "device cuda:1 asked for" in result.stderr
    for command in (["evaluate", str(tmp_path)], ["predict", str(tmp_path), "--out",
                                                  str(tmp_path / "s.csv")]):
        result = runner.invoke(app, [*command, "--device", "cuda"])
        assert result.exit_code == 3 and "device cuda:0 asked for" in result.stderr


def test_cli_shows_the_cpu_fallback(synth: Path, tmp_path: Path, no_gpu: None) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["train", str(synth), "--model", "mlp", "--modalities", "face",
                                 "--epochs", "1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("warning: device auto: no GPU found") == 1
    assert "device: cpu" in result.stdout
    run = next(tmp_path.iterdir())
    result = runner.invoke(app, ["predict", str(run), "--split", "test", "--device", "auto",
                                 "--out", str(tmp_path / "s.csv")])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("no GPU found") == 1
    result = runner.invoke(app, ["evaluate", str(run), "--split", "val", "--device", "cpu"])
    assert result.exit_code == 0 and "no GPU" not in result.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_the_gpu_matches_the_cpu(synth: Path, tmp_path: Path) -> None:
    cfg = dict(store=synth, model="tcn", modalities=("face", "audio"), epochs=2)
    cpu = train(TrainConfig(**cfg, device="cpu", out=tmp_path / "cpu"), **QUIET)
    gpu = train(TrainConfig(**cfg, device="cuda", out=tmp_path / "gpu"), **QUIET)
    a, b = (json.loads((r / "results.json").read_text()) for r in (cpu, gpu))
    assert a["config"]["device"] == "cpu" and b["config"]["device"] == "cuda:0"
    assert b["history"][0]["loss"] == pytest.approx(a["history"][0]["loss"], rel=1e-3)
    for split in ("val", "test"):
        assert b["splits"][split]["frame"]["avg_f1"] == pytest.approx(
            a["splits"][split]["frame"]["avg_f1"], abs=0.05)
    # the same weights evaluated on either device give the same metrics
    on_cpu, on_gpu = evaluate(cpu, "test", device="cpu"), evaluate(cpu, "test", device="cuda")
    assert on_gpu["device"] == "cuda:0"
    for k in ("accuracy", "avg_f1", "ap_pos"):
        assert on_gpu["frame"][k] == pytest.approx(on_cpu["frame"][k], abs=1e-3)
    weights = torch.load(gpu / "model.pt", weights_only=True)["state_dict"]
    assert all(w.device.type == "cpu" for w in weights.values())  # loadable anywhere
