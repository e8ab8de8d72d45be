"""ONNX Runtime sessions: CUDA when onnxruntime-gpu and a GPU are present, CPU
otherwise; the choice is logged and recorded as provenance. Model files are
checked against their expected SHA-256 before use."""

from __future__ import annotations

import hashlib
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from store.errors import ConfigError, ModelError

log = logging.getLogger("bahfs.extractors")

#: Threads one extracting process may use (set per Dask worker by the flows, so that
#: N workers on one machine share its cores instead of each taking all of them).
THREADS_ENV = "BAHFS_THREADS"


def threads_per_process() -> int:
    """``$BAHFS_THREADS`` when set, else every core (0 lets ONNX Runtime decide)."""
    value = os.environ.get(THREADS_ENV, "")
    if not value:
        return 0
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{THREADS_ENV}={value!r} is not a positive integer",
                          expected="e.g. 2")
    return int(value)
_PREFERRED = ("CUDAExecutionProvider", "CPUExecutionProvider")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_model(path: Path, expected_sha256: str | None) -> str:
    """The file's SHA-256; raises when it differs from ``expected_sha256``."""
    if not Path(path).is_file():
        raise ModelError("model file not found", path=path,
                         expected="the file shipped by the model's package, or a path you set")
    digest = sha256_file(Path(path))
    if expected_sha256 and digest != expected_sha256:
        raise ModelError("model file does not match its expected SHA-256", path=path,
                         expected=expected_sha256)
    return digest


def providers() -> list[str]:
    """Execution providers to ask for, in order (never Azure, never implicit)."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    return [p for p in _PREFERRED if p in available]


@lru_cache(maxsize=16)
def session(model: bytes | str, threads: int = 0) -> Any:
    """An InferenceSession on the best provider, quiet unless something is wrong."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    threads = threads or threads_per_process()
    if threads:
        opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(model, sess_options=opts, providers=providers())
    log.info("onnxruntime session on %s", sess.get_providers()[0])
    return sess
