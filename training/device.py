"""The torch device of training and evaluation, from the one device setting.

:func:`torch_device` resolves ``--device`` / ``$BAHFS_DEVICE`` (``auto``, ``cpu``,
``cuda``, ``cuda:N``; :mod:`store.devices`) against what torch can see. CUDA asked
for where there is none (or not that many) is a :class:`DeviceError` naming what
was asked and what is there: never a quiet CPU run. ``auto`` takes ``cuda:0``
when torch sees a GPU, else the CPU with one warning on the ``bahfs.training``
logger (the CLI shows it on stderr).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from store.devices import DeviceSetting, parse_device
from store.errors import BahfsError, DeviceError

LOG = logging.getLogger("bahfs.training")
CPU = torch.device("cpu")


def cuda_seen() -> str:
    """What torch can see, in words (for errors and the run's metadata)."""
    if not torch.cuda.is_available():
        build = torch.version.cuda
        return ("no CUDA device (torch.cuda.is_available() is False; this torch is "
                + (f"built for CUDA {build})" if build else "a CPU-only build)"))
    n = torch.cuda.device_count()
    names = ", ".join(f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(n))
    return f"{n} CUDA device{'s' if n != 1 else ''} ({names})"


def torch_device(setting: str | DeviceSetting | None = None) -> torch.device:
    """The torch device for ``setting`` (text as ``--device`` takes it; default:
    ``$BAHFS_DEVICE``, else ``auto``).

    Raises :class:`~store.errors.ConfigError` for a setting that is none of
    ``auto|cpu|cuda|cuda:N`` and :class:`~store.errors.DeviceError` for CUDA that
    torch cannot give.
    """
    parsed = setting if isinstance(setting, DeviceSetting) else parse_device(setting)
    if parsed.kind == "cpu":
        return CPU
    if parsed.kind == "auto":
        if torch.cuda.is_available() and torch.cuda.device_count() > 0:
            return torch.device("cuda", 0)
        LOG.warning("device auto: no GPU found (%s); training and evaluation run on the CPU",
                    cuda_seen())
        return CPU
    if not torch.cuda.is_available():
        raise DeviceError(f"device {parsed} asked for, but torch sees {cuda_seen()}",
                          expected="--device cpu (or auto), or a machine with a CUDA GPU "
                                   "and a CUDA build of torch")
    count = torch.cuda.device_count()
    if parsed.index >= count:
        raise DeviceError(f"device {parsed} asked for, but torch sees {cuda_seen()}",
                          expected=f"cuda:0 to cuda:{count - 1}" if count else "a CUDA GPU")
    return torch.device("cuda", parsed.index)


def pins(device: torch.device) -> bool:
    """Whether DataLoaders feeding ``device`` pin their batches (CUDA only)."""
    return device.type == "cuda"


def to_device(batch: dict[str, Any], keys: list[str], device: torch.device
              ) -> dict[str, torch.Tensor]:
    """The tensors of ``batch`` under ``keys`` on ``device`` (asynchronous copies from
    pinned memory on CUDA; the same tensors on the CPU)."""
    non_blocking = device.type == "cuda"
    return {k: batch[k].to(device, non_blocking=non_blocking) for k in keys}


def model_device(model: torch.nn.Module) -> torch.device:
    """Where ``model``'s parameters are (the CPU for a model without any)."""
    for p in model.parameters():
        return p.device
    return CPU


@contextmanager
def device_errors(device: torch.device) -> Iterator[None]:
    """On CUDA, turn torch's device failures (out of memory, a lost or failing device)
    into :class:`DeviceError` naming the device; elsewhere let everything through."""
    try:
        yield
    except BahfsError:
        raise
    except RuntimeError as exc:
        failed = isinstance(exc, torch.OutOfMemoryError | torch.AcceleratorError) or (
            "CUDA" in str(exc) or "cuda" in str(exc))
        if device.type != "cuda" or not failed:
            raise
        what = "out of memory" if isinstance(exc, torch.OutOfMemoryError) else "failed"
        raise DeviceError(f"device {device} {what}: {str(exc).splitlines()[0]}",
                          expected="a smaller --batch-size, another --device, or "
                                   "--device cpu") from exc
