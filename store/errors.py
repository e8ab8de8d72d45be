"""The one exception hierarchy of bahfs.

Every error raised on purpose by bahfs derives from :class:`BahfsError`, and each
kind is also the matching built-in exception, so a caller can catch by kind
without matching message text::

    BahfsError
    ├── NotFoundError        (FileNotFoundError)  └── ToolMissingError
    ├── CorruptError         (ValueError)
    ├── DatasetLayoutError   (ValueError)         ├── UnsafeYamlError, PathEscapeError
    ├── ConsentError         (PermissionError)
    ├── ConfigError          (ValueError)
    ├── VideoDecodeError     (ValueError)
    ├── ModelError           (RuntimeError)       └── ExtractionError
    ├── BusyError            (TimeoutError)       └── LeaseLostError
    ├── StoreError           (ValueError)
    ├── SampleDataError      (ValueError)
    ├── OrchestrationError   (RuntimeError)
    └── MachineError         (RuntimeError)       ├── DeviceError
                                                  └── ObjectStoreError

Errors about input carry the file, participant, video and what was expected, so a
user can find and fix the problem without reading a traceback.
"""

from __future__ import annotations

from pathlib import PurePath


class BahfsError(Exception):
    """Root of every error bahfs raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        path: str | PurePath | None = None,
        participant: str | None = None,
        video: str | None = None,
        expected: str | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.participant = participant
        self.video = video
        self.expected = expected
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [self.message]
        if self.path:
            parts.append(f"file: {self.path}")
        if self.participant:
            parts.append(f"participant: {self.participant}")
        if self.video:
            parts.append(f"video: {self.video}")
        if self.expected:
            parts.append(f"expected: {self.expected}")
        return " | ".join(parts)


class NotFoundError(BahfsError, FileNotFoundError):
    """Something bahfs was pointed at is not there: a file, folder, table, array, feature
    set, video or run."""


class CorruptError(BahfsError, ValueError):
    """Data that is there but damaged: a truncated chunk, unreadable metadata, attributes
    that disagree with what they describe."""


class DatasetLayoutError(BahfsError, ValueError):
    """A release (real or generated) does not have the expected layout or keys."""


class UnsafeYamlError(DatasetLayoutError):
    """A YAML file carries a tag that could run code (any python tag but tuple)."""


class PathEscapeError(DatasetLayoutError):
    """A path inside an annotation file points outside the dataset root."""


class ConsentError(BahfsError, PermissionError):
    """An operation would touch data of a participant who did not consent."""


class ConfigError(BahfsError, ValueError):
    """A configuration value or option is invalid."""


class VideoDecodeError(BahfsError, ValueError):
    """A video cannot be decoded (corrupt, empty, no video stream)."""


class ModelError(BahfsError, RuntimeError):
    """A model cannot be used: missing, wrong hash, wrong inputs or outputs."""


class ExtractionError(ModelError):
    """An extractor failed on a video (model error, bad output)."""


class MachineError(BahfsError, RuntimeError):
    """The machine failed while a video was processed (a disk full, a store read-only
    or unreachable, host or device memory, a model file gone): never the video's
    fault, never a quarantine. The message says what to fix (``expected``); the
    video stays pending (:mod:`store.failures`)."""


class DeviceError(MachineError):
    """The compute device failed or cannot be had: CUDA asked for where there is none,
    out of GPU memory, a lost device. Never a fault of the video: a run retries it
    (a smaller batch, then the task's retries) instead of quarantining the video."""


class ObjectStoreError(MachineError):
    """The object store holding a store (``s3://``) cannot be reached, or refuses
    requests (the server down, credentials refused, errors after the client's
    retries): every video would meet it, so a run stops, as on a full disk."""


class BusyError(BahfsError, TimeoutError):
    """Something another process holds (a lock) stayed held past the time allowed."""


class LeaseLostError(BusyError):
    """A lock or publish claim on object storage was lost by its holder: its lease ran
    out unrenewed (the server unreachable, the process stalled) or another process
    took it over. What it guarded (a video's publication) did not happen."""


class StoreError(BahfsError, ValueError):
    """The feature store or its tables are inconsistent (neither missing nor damaged
    data: a request the store cannot honour as it stands)."""


class ToolMissingError(NotFoundError):
    """A required system tool (ffmpeg, espeak-ng) is not installed."""


class SampleDataError(BahfsError, ValueError):
    """The sample-dataset generator could not produce a dataset."""


class OrchestrationError(BahfsError, RuntimeError):
    """The Prefect server, a worker, a deployment or a flow run failed."""
