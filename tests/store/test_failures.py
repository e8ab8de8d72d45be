"""The classification itself (``store.failures.classify``), one exception at a time;
device faults recognised by the runtimes' own exception types."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from extractors.runtime import device_fault, device_fault_kind
from store.errors import (
    ConsentError,
    DatasetLayoutError,
    DeviceError,
    ExtractionError,
    ModelError,
    StoreError,
    ToolMissingError,
    VideoDecodeError,
)
from store.failures import INPUT_KINDS, Where, classify


def _where(tmp_path: Path) -> Where:
    (tmp_path / "store").mkdir()
    (tmp_path / "release").mkdir()
    video = tmp_path / "release" / "v.mp4"
    video.write_bytes(b"x")
    return Where(tmp_path / "store", video, tmp_path / "release", "P1", "P1__Visite_1__Q1")


def _raised(exc: BaseException, cause: BaseException) -> BaseException:
    try:
        raise exc from cause
    except BaseException as e:
        return e


@pytest.mark.parametrize(("exc", "owner", "kind", "stop"), [
    (VideoDecodeError("ffmpeg failed"), "input", "undecodable", False),
    (DatasetLayoutError("labels 10, frames 12"), "input", "labels", False),
    (ConsentError("withdrew"), "input", "withdrawn", False),
    (OSError(errno.ENOSPC, "No space left on device"), "machine", "disk full", True),
    (OSError(errno.EROFS, "Read-only file system"), "machine", "read-only filesystem", True),
    (PermissionError(errno.EACCES, "Permission denied"), "machine", "permission denied", True),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), "machine", "disk quota exceeded", True),
    (OSError(errno.EIO, "Input/output error"), "machine", "EIO", False),
    (MemoryError(), "machine", "host memory", False),
    (RuntimeError("can't start new thread"), "machine", "host memory", False),
    (ModelError("model file not found"), "machine", "model", True),
    (ToolMissingError("ffmpeg is not installed"), "machine", "tool missing", True),
    (DeviceError("CUDA out of memory"), "machine", "device memory", False),
    (DeviceError("device cuda asked for, no GPU"), "machine", "device", True),
    (ExtractionError("face failed: shape mismatch"), "bug", "ExtractionError", False),
    (StoreError("feature set metadata does not match"), "bug", "StoreError", False),
    (KeyError("x"), "bug", "KeyError", False),
    (ValueError("operands could not be broadcast"), "bug", "ValueError", False),
])
def test_each_kind_has_its_owner(exc: BaseException, owner: str, kind: str, stop: bool,
                                 tmp_path: Path) -> None:
    fault = classify(exc, _where(tmp_path), device_fault_kind)
    assert (fault.owner, fault.kind, fault.stop) == (owner, kind, stop)
    assert fault.retry == (owner == "machine" and not stop)
    if owner == "input":
        assert fault.kind in INPUT_KINDS
        for part in ("file: ", "participant: P1", "video: P1__Visite_1__Q1", "expected: "):
            assert part in fault.message
    if owner == "machine":
        assert fault.fix


def test_the_cause_chain_is_searched_machine_first(tmp_path: Path) -> None:
    where = _where(tmp_path)
    no_memory = _raised(VideoDecodeError("cannot run ffmpeg"), OSError(errno.ENOMEM, "no mem"))
    assert classify(no_memory, where).owner == "machine"
    wrapped = _raised(ExtractionError("logmel failed"), VideoDecodeError("no video stream"))
    assert (classify(wrapped, where).owner, classify(wrapped, where).kind) == \
        ("input", "undecodable")
    implicit: BaseException
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise KeyError("while cleaning up") from None
    except KeyError as e:
        implicit = e
    assert classify(implicit, where).owner == "bug"  # from None: the context is dropped


def test_missing_files_and_unreachable_places(tmp_path: Path) -> None:
    where = _where(tmp_path)
    assert where.file is not None and where.source is not None and where.store is not None
    where.file.unlink()
    gone = classify(VideoDecodeError("video file not found"), where)
    assert (gone.owner, gone.kind) == ("input", "missing file")
    where.source.rename(tmp_path / "unmounted")
    fault = classify(VideoDecodeError("video file not found"), where)
    assert (fault.owner, fault.kind, fault.stop) == ("machine", "source unreachable", True)
    where.store.rmdir()
    fault = classify(FileNotFoundError(errno.ENOENT, "gone"), where)
    assert (fault.owner, fault.kind, fault.stop) == ("machine", "store unreachable", True)


def test_device_faults_by_type_and_host_memory_apart() -> None:
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    assert device_fault_kind(ort_state.EPFail("CUDA provider failed")) == "lost"
    assert device_fault_kind(ort_state.EPFail("Failed to allocate memory for ...")) == "memory"
    torch = pytest.importorskip("torch")
    assert device_fault_kind(torch.OutOfMemoryError("CUDA out of memory")) == "memory"
    assert device_fault_kind(MemoryError()) is None and not device_fault(MemoryError())
    assert device_fault_kind(ort_state.InvalidArgument("indices element out of bounds")) \
        is None
    # the documented fallback: a runtime error with no type of its own, by its text
    assert device_fault_kind(RuntimeError("CUDA failed with error out of memory")) == "memory"
    assert device_fault_kind(RuntimeError("CUDA error: an illegal memory access")) == "lost"
    assert device_fault_kind(ValueError("out of memory")) is None  # not a runtime error
