"""The one exception hierarchy of bahfs.

Every error raised on purpose by bahfs derives from :class:`BahfsError`. Errors
about input carry the file, participant, video and what was expected, so a user
can find and fix the problem without reading a traceback.
"""

from __future__ import annotations

from pathlib import Path


class BahfsError(Exception):
    """Root of every error bahfs raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
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


class DatasetLayoutError(BahfsError):
    """A release (real or generated) does not have the expected layout or keys."""


class UnsafeYamlError(DatasetLayoutError):
    """A YAML file carries a tag that could run code (any python tag but tuple)."""


class PathEscapeError(DatasetLayoutError):
    """A path inside an annotation file points outside the dataset root."""


class ConsentError(BahfsError):
    """An operation would touch data of a participant who did not consent."""


class SampleDataError(BahfsError):
    """The sample-dataset generator could not produce a dataset."""


class ToolMissingError(BahfsError):
    """A required system tool (ffmpeg, espeak-ng) is not installed."""


class VideoDecodeError(BahfsError):
    """A video cannot be decoded (corrupt, empty, no video stream)."""


class ExtractionError(BahfsError):
    """An extractor failed on a video (model error, bad output)."""


class StoreError(BahfsError):
    """The feature store or its tables are missing, damaged or inconsistent."""


class ConfigError(BahfsError):
    """A configuration value is invalid."""


class OrchestrationError(BahfsError):
    """The Prefect server, a worker, a deployment or a flow run failed."""
