"""Whose fault it is: the one classification of everything raised while a video is
processed (probe, decode, every extractor stage, checks, write, publish).

:func:`classify` turns any exception into a :class:`Fault` with an owner:

* ``input``: the video's. Quarantined with a reason naming the file, participant,
  video and what was expected. An allow-list of kinds (:data:`INPUT_KINDS`): a file
  that cannot be decoded or disagrees with what was recorded about it
  (:class:`~store.errors.VideoDecodeError`), labels or annotations that do not fit
  it (:class:`~store.errors.DatasetLayoutError`), a file missing from a source that
  is otherwise there, and a participant who withdrew while the video was processed
  (:class:`~store.errors.ConsentError`: nothing stored).
* ``machine``: the machine's. The video stays pending, never quarantined. Faults
  that will hit every video stop the run (``stop``): the store's disk full or over
  quota, the store read-only, permissions, a file size limit, the store or the
  video source unreachable, a model file missing or changed, a system tool
  missing, a setting bahfs refuses (:class:`~store.errors.ConfigError`), the
  device lost. Transient ones (``retry``: out of device or host
  memory, an I/O error, a network file system hiccup, a lock held too long, the
  worker process that ran the video lost) are retried by the caller.
* ``bug``: anything else. Not quarantined; the caller saves the traceback and
  goes on with the other videos.

The chain of causes (``raise ... from``, and the implicit context) is searched
machine first: a decode error that happened because ffmpeg could not be started
for lack of memory is the machine's, not the video's. Device faults are
recognised by the ``device`` callable the caller passes
(:func:`extractors.runtime.device_fault_kind`: by exception type where the runtime
has one); a lost worker process by the ``lost`` callable
(:func:`flows.outcomes.worker_lost`: the Dask and Prefect types); the store never
imports a model runtime or a scheduler. :func:`machine_error` is the same verdict on
a fault met outside a video (ingesting a batch, writing a run's record).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from store.errors import (
    BahfsError,
    BusyError,
    ConfigError,
    ConsentError,
    DatasetLayoutError,
    DeviceError,
    ExtractionError,
    MachineError,
    ModelError,
    NotFoundError,
    ObjectStoreError,
    ToolMissingError,
    VideoDecodeError,
)
from store.s3_objects import is_s3

Owner = Literal["input", "machine", "bug"]
#: A device recogniser: ``memory`` for out of device memory (transient), ``lost`` for
#: a device lost or unusable (stops the run), None for anything else.
DeviceRecogniser = Callable[[BaseException], str | None]
#: A lost-worker recogniser: True when the exception says the process that ran the
#: work is gone (killed, its connection closed), not that the work failed.
WorkerLostRecogniser = Callable[[BaseException], bool]

#: The input faults that quarantine a video: nothing else ever does.
INPUT_KINDS = ("undecodable", "labels", "missing file", "withdrawn")

_STOP_ERRNO: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("disk full", "free space on the filesystem of the store (or of the "
                                "temporary folder), then run extract again"),
    errno.EDQUOT: ("disk quota exceeded", "raise the quota or free space, then run "
                                          "extract again"),
    errno.EROFS: ("read-only filesystem", "make the store writable again (remount it "
                                          "read-write), then run extract again"),
    errno.EACCES: ("permission denied", "give the user running bahfs write access to "
                                        "the store and read access to the videos"),
    errno.EPERM: ("operation not permitted", "give the user running bahfs write access "
                                             "to the store and read access to the videos"),
    errno.EFBIG: ("file size limit reached", "raise the file size limit (ulimit -f) or "
                                             "the filesystem's maximum file size"),
}
_TRANSIENT_ERRNO = {errno.EIO, errno.ESTALE, errno.ENOTCONN, errno.ETIMEDOUT,
                    errno.EHOSTDOWN, errno.EHOSTUNREACH, errno.ENETDOWN, errno.ENETUNREACH,
                    errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.EAGAIN,
                    errno.ENOMEM, errno.EMFILE, errno.ENFILE, errno.EBUSY, errno.EINTR}
#: The one message a Python runtime gives, without a type, for a thread it could
#: not start (no memory for its stack): matched as text, a documented fallback.
_NO_THREAD = "can't start new thread"


@dataclass(frozen=True)
class Fault:
    """The verdict on one exception."""

    owner: Owner
    kind: str  # one of INPUT_KINDS for input faults; a short name otherwise
    message: str  # one line for a user: what happened, where
    fix: str = ""  # what to do about it (machine faults)
    stop: bool = False  # every later video would hit it: stop the run
    retry: bool = False  # transient: worth trying the video again

    @property
    def summary(self) -> str:
        """``message`` and, when there is one, what to do (``fix``)."""
        return f"{self.message} (fix: {self.fix})" if self.fix else self.message


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions behind it (explicit causes, else the implicit
    context), each once."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ if cur.__cause__ is not None or cur.__suppress_context__ \
            else cur.__context__


@dataclass(frozen=True)
class Where:
    """What the failing work was about: every field optional."""

    store: Path | str | None = None  # a folder, or s3://bucket/prefix
    file: Path | None = None  # the video file
    source: Path | None = None  # the release (batch) folder the file is in
    participant: str | None = None
    video: str | None = None


def classify(exc: BaseException, where: Where = Where(),
             device: DeviceRecogniser | None = None,
             lost: WorkerLostRecogniser | None = None) -> Fault:
    """Whose fault ``exc`` is (see the module docstring)."""
    chain = list(causes(exc))
    for e in chain:
        if lost is not None and lost(e):
            return Fault("machine", "worker lost", _render(e, where, None),
                         "check the workers (memory limit, logs); the next run takes "
                         "the video again", retry=True)
        fault = _machine(e, where, device)
        if fault is not None:
            return fault
    for e in chain:
        fault = _input(e, where)
        if fault is not None:
            return fault
    return Fault("bug", type(exc).__name__, _render(exc, where, None))


def _render(exc: BaseException, where: Where, expected: str | None) -> str:
    """The error as one line naming file, participant, video and what was expected
    (taken from the error where it says, else from ``where``)."""
    if isinstance(exc, BahfsError):
        return str(BahfsError(exc.message, path=exc.path or where.file,
                              participant=exc.participant or where.participant,
                              video=exc.video or where.video,
                              expected=exc.expected or expected))
    text = f"{type(exc).__name__}: {exc}"
    return str(BahfsError(text, path=where.file, participant=where.participant,
                          video=where.video, expected=expected))


def _unreachable(path: Path | str | None) -> bool:
    """Whether the folder ``path`` is gone (a bucket's absence is the bucket's own
    error, :class:`~store.errors.ObjectStoreError`)."""
    return path is not None and not is_s3(path) and not Path(path).is_dir()


def _machine(e: BaseException, where: Where,
             device: DeviceRecogniser | None) -> Fault | None:
    kind = device(e) if device is not None else None
    if kind is None and isinstance(e, DeviceError):
        kind = "memory" if "memory" in e.message.lower() else "lost"
    if kind == "memory":
        return Fault("machine", "device memory", _render(e, where, None),
                     "free device memory or lower the batch size (retried)", retry=True)
    if kind == "lost":
        return Fault("machine", "device", _render(e, where, None),
                     "check the GPU (nvidia-smi) and the device setting (--device)",
                     stop=True)
    if isinstance(e, MemoryError):
        return Fault("machine", "host memory", _render(e, where, None) + " (out of memory)",
                     "free memory on the host, or run fewer workers (retried)", retry=True)
    if isinstance(e, RuntimeError) and _NO_THREAD in str(e):
        return Fault("machine", "host memory", _render(e, where, None),
                     "free memory on the host, or run fewer workers (retried)", retry=True)
    if isinstance(e, ToolMissingError):
        return Fault("machine", "tool missing", _render(e, where, None),
                     e.expected or "install the tool", stop=True)
    if isinstance(e, ModelError) and not isinstance(e, ExtractionError):
        return Fault("machine", "model", _render(e, where, None),
                     "restore the model file (or point the plan at the right one), then "
                     "run extract again", stop=True)
    if isinstance(e, ObjectStoreError):
        return Fault("machine", "store unreachable", _render(e, where, None),
                     e.expected or "make the object store reachable, then run again",
                     stop=True)
    if isinstance(e, MachineError) and not isinstance(e, DeviceError):  # classified before
        return Fault("machine", "machine", _render(e, where, None), e.expected or "",
                     retry=True)
    if isinstance(e, ConfigError):
        return Fault("machine", "configuration", _render(e, where, None),
                     e.expected or "correct the setting", stop=True)
    if isinstance(e, BusyError):
        return Fault("machine", "busy", _render(e, where, None), "retried", retry=True)
    if _unreachable(where.store) and isinstance(e, (OSError, NotFoundError)):
        return Fault("machine", "store unreachable",
                     f"the store {where.store} is not reachable: {e}",
                     "mount the store again (or check its path), then run extract again",
                     stop=True)
    if isinstance(e, OSError) and not isinstance(e, BahfsError) and e.errno is not None:
        if e.errno in _STOP_ERRNO:
            what, fix = _STOP_ERRNO[e.errno]
            return Fault("machine", what, f"{what}: {os.strerror(e.errno)}"
                         + (f": {e.filename}" if e.filename else ""), fix, stop=True)
        if e.errno in _TRANSIENT_ERRNO:
            return Fault("machine", errno.errorcode.get(e.errno, "I/O error"),
                         _render(e, where, None), "retried", retry=True)
    if isinstance(e, (VideoDecodeError, NotFoundError, FileNotFoundError)) \
            and _unreachable(where.source):
        return Fault("machine", "source unreachable",
                     f"the video source {where.source} is not reachable: {e}",
                     "mount the folder of the videos again, then run extract again",
                     stop=True)
    return None


def _input(e: BaseException, where: Where) -> Fault | None:
    if isinstance(e, ConsentError):
        return Fault("input", "withdrawn", _render(
            e, where, "the participant's consent (withdrawn: nothing of theirs is stored)"))
    if isinstance(e, DatasetLayoutError):
        return Fault("input", "labels", _render(
            e, where, "labels and annotations that fit the video (one label per frame)"))
    if isinstance(e, VideoDecodeError):
        missing = where.file is not None and not Path(where.file).exists()
        return Fault("input", "missing file" if missing else "undecodable", _render(
            e, where, "the video file, restored" if missing else
            "a video file ffmpeg decodes completely, with the frames recorded at ingest"))
    return None


def machine_error(exc: Exception, store: Path | str) -> Exception:
    """A fault met outside a video (ingesting a batch, writing a run's record) in
    ``store`` (a folder or ``s3://...``) as :class:`~store.errors.MachineError` saying
    what to fix when :func:`classify` finds it the machine's; else ``exc`` itself."""
    if isinstance(exc, MachineError):
        return exc
    fault = classify(exc, Where(store=store if is_s3(store) else Path(store)))
    return MachineError(fault.summary, path=store) if fault.owner == "machine" else exc
