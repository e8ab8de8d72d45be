"""The compute device setting, one for every model: ``auto``, ``cpu``, ``cuda`` or
``cuda:N``, from ``--device`` (or a flow's ``device`` parameter), else
``$BAHFS_DEVICE``, read once where a run starts and passed down from there.

Only the setting lives here (the store layer imports no runtime): the extractors
(ONNX Runtime, CTranslate2, the whisperX runner) and training (torch) each resolve it
against what their runtime can see.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from store.errors import ConfigError

DEVICE_ENV = "BAHFS_DEVICE"
_FORM = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


@dataclass(frozen=True)
class DeviceSetting:
    kind: str  # auto, cpu or cuda
    index: int = 0  # the CUDA device number (cuda:N)
    pinned: bool = False  # cuda:N given (one GPU), not plain cuda (every GPU)

    def __str__(self) -> str:
        return f"cuda:{self.index}" if self.kind == "cuda" else self.kind


def parse_device(text: str | None = None) -> DeviceSetting:
    """``text`` as a setting; raises :class:`ConfigError` on anything else. Without
    ``text``, ``$BAHFS_DEVICE``, else ``auto``: only where a run starts (the CLI, a
    flow, training's entry points) is it called so; everything below gets the
    setting passed down."""
    value = (text if text is not None else os.environ.get(DEVICE_ENV, "")).strip().lower()
    m = _FORM.match(value or "auto")
    if m is None or (m[2] is not None and m[1] != "cuda"):
        raise ConfigError(f"device {value!r}", expected="auto, cpu, cuda or cuda:N")
    return DeviceSetting(m[1], int(m[2] or 0), m[2] is not None)
