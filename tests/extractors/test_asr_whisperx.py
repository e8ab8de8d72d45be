"""The whisperX backend adapter, against a stand-in ``whisperx`` module (whisperX
itself cannot be installed next to torch 2.13; see extractors/asr_whisperx.py)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from extractors import asr_whisperx
from extractors.speech import interpolate_times
from store.errors import ConfigError, ExtractionError, ModelError


def _fake(language: str = "en") -> tuple[types.ModuleType, dict[str, Any]]:
    calls: dict[str, Any] = {}
    mod = types.ModuleType("whisperx")

    class Pipeline:
        def transcribe(self, audio: np.ndarray, batch_size: int) -> dict[str, Any]:
            calls["audio"] = audio.shape
            return {"language": language, "segments": [{"text": "hello 42 world",
                                                        "start": 0.4, "end": 2.1}]}

    def load_model(arch: str, device: str, **kw: Any) -> Pipeline:
        calls["load_model"] = (arch, device, kw)
        return Pipeline()

    def load_align_model(lang: str, device: str, **kw: Any) -> tuple[str, dict[str, str]]:
        calls["align_model"] = (lang, kw)
        return "aligner", {"language": lang}

    def align(segments: list[dict[str, Any]], model: str, meta: dict[str, str],
              audio: np.ndarray, device: str, **kw: Any) -> dict[str, Any]:
        return {"word_segments": [{"word": "hello", "start": 0.5, "end": 0.9, "score": 0.9},
                                  {"word": "42"},
                                  {"word": "world", "start": 1.5, "end": 2.0, "score": 0.8}]}

    for name, fn in {"load_model": load_model, "load_align_model": load_align_model,
                     "align": align}.items():
        setattr(mod, name, fn)
    return mod, calls


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    asr_whisperx._models.cache_clear()


def _align_dir(tmp_path: Path) -> str:
    (tmp_path / "config.json").write_text("{}")
    return str(tmp_path)


def test_words_come_from_the_local_aligner(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    fake, calls = _fake()
    monkeypatch.setitem(sys.modules, "whisperx", fake)
    out = asr_whisperx.transcribe_whisperx(np.zeros(16_000 * 3, np.float32), "/m/tiny",
                                           "int8", "en", _align_dir(tmp_path))
    assert out["language"] == "en"
    assert [w["word"] for w in out["words"]] == ["hello", "42", "world"]
    assert calls["align_model"][1]["model_name"] == str(tmp_path)
    assert calls["align_model"][1]["model_cache_only"] is True
    assert calls["load_model"][2]["local_files_only"] is True
    timed = interpolate_times(out["words"], 3.0)
    assert timed[1]["interpolated"] and 0.9 <= timed[1]["start"] <= timed[1]["end"] <= 1.5


def test_clear_errors_without_whisperx_or_aligner(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "whisperx", None)  # import fails
    with pytest.raises(ConfigError, match="needs whisperX"):
        asr_whisperx.transcribe_whisperx(np.zeros(10, np.float32), "m", "int8", "", "")
    monkeypatch.setitem(sys.modules, "whisperx", _fake()[0])
    with pytest.raises(ModelError, match="wav2vec2") as exc:
        asr_whisperx.transcribe_whisperx(np.zeros(10, np.float32), "m", "int8", "",
                                         str(tmp_path / "none"))
    assert "none" in str(exc.value)


def test_language_must_match_the_aligner(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "whisperx", _fake(language="fr")[0])
    with pytest.raises(ExtractionError, match="'fr'"):
        asr_whisperx.transcribe_whisperx(np.zeros(10, np.float32), "m", "int8", "",
                                         _align_dir(tmp_path))
