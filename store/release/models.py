"""Pydantic models of the YAML entries of a BAH release, and error translation."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from store.errors import DatasetLayoutError

_TRUE = {"yes", "y", "true", "1", "oui"}
_FALSE = {"no", "n", "false", "0", "non"}


def parse_bool(value: Any) -> bool:
    """Parse a yes/no consent or student flag; anything else is an error."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"expected yes/no, got {value!r}")


class ParticipantMeta(BaseModel):
    """One participant's entry of ``meta_data.yml`` (keys spelled as in the release).

    Keys it does not know are kept in ``model_extra`` for the reader to report.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    age: int | None = Field(alias="Age")
    age_range: str | None = Field(alias="Age range")
    birth_country: str | None = Field(alias="Birth country")
    province: str | None = Field(alias="Canada province")
    ethnicity: str | None = Field(alias="Ethnicity")
    ethnicity_simplified: str | None = Field(alias="Ethnicity simplified")
    gender: str | None = Field(alias="Gender")
    is_student: bool = Field(alias="Is student")
    consent_challenges: bool = Field(alias="Use in challenges")
    consent_publications: bool = Field(alias="Use in publications")

    @field_validator("is_student", "consent_challenges", "consent_publications", mode="before")
    @classmethod
    def _flag(cls, v: Any) -> bool:
        return parse_bool(v)

    @field_validator("age_range", "birth_country", "province", "ethnicity",
                     "ethnicity_simplified", "gender", mode="before")
    @classmethod
    def _text(cls, v: Any) -> str | None:
        return None if v is None else str(v)


class VideoAnnotation(BaseModel):
    """One video's entry of the annotation file, in any variant.

    The four-key 2025 file carries only ``global_ah``, ``fr_detailed_ah``,
    ``time_detailed_ah`` and ``frame_annotation``; which keys must be present is the
    reader's check (per variant), so the others default to None here. Frame
    annotations are checked by the reader (one fast pass over every frame id).
    Unknown keys are kept in ``model_extra`` for the reader to report.
    """

    model_config = ConfigDict(extra="allow")

    global_ah: int = Field(ge=0, le=1)
    annotator_id: str | None = None
    certainty_ah: list[str | None] | str | None = None
    fr_detailed_ah: list[tuple[int, int]]
    time_detailed_ah: list[tuple[str, str]]
    all_cues: list[dict[str, list[str] | str | None]] | None = None
    frame_annotation: list[Any]
    transcript: str | None = None

    @field_validator("annotator_id", mode="before")
    @classmethod
    def _ann(cls, v: Any) -> str | None:
        return None if v is None else str(v)

    @field_validator("certainty_ah", mode="before")
    @classmethod
    def _cert(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [None if c is None else str(c) for c in v]
        return None if v is None else str(v)

    @field_validator("fr_detailed_ah", "time_detailed_ah", mode="before")
    @classmethod
    def _pairs(cls, v: Any) -> Any:
        return [] if v is None else v


class TranscriptChunk(BaseModel):
    """One chunk of a Whisper transcription file (times relative to Whisper's window)."""

    model_config = ConfigDict(extra="allow")

    language: str | None = None
    text: str
    timestamp: tuple[float | None, float | None]


class TranscriptFile(BaseModel):
    """A Whisper transcription file: full text plus timed chunks."""

    model_config = ConfigDict(extra="allow")

    text: str
    chunks: list[TranscriptChunk]


def note_extra(unknown: dict[str, set[str]], where: str, *models: BaseModel) -> None:
    """Add the keys ``models`` did not know (their ``model_extra``) to ``unknown[where]``."""
    extra = {str(k) for m in models for k in (m.model_extra or ())}
    if extra:
        unknown.setdefault(where, set()).update(extra)


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any, *, path: Path, entry: str,
                           participant: str | None = None, video: str | None = None) -> M:
    """Validate ``data`` as ``model``; on failure raise a DatasetLayoutError naming the
    file, the entry and the key it expected."""
    if not isinstance(data, dict):
        raise DatasetLayoutError(
            f"entry {entry!r} is a {type(data).__name__}, not a mapping", path=path,
            participant=participant, video=video, expected=f"a mapping for {model.__name__}",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        kind = "missing key" if err["type"] == "missing" else f"bad value for key {key!r}"
        raise DatasetLayoutError(
            f"entry {entry!r}: {kind} {key!r}" if err["type"] == "missing"
            else f"entry {entry!r}: {kind}: {err['msg']}",
            path=path, participant=participant, video=video,
            expected=f"key {key!r} ({model.__name__})",
        ) from exc
