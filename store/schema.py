"""Declared schemas of every Parquet table in the store: the one place they live.

``docs/tables.md`` documents each column; ``tests/store/test_schema_doc.py`` checks
that the doc and these declarations agree.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from store.errors import StoreError

SPLITS: Final = ("train", "val", "test")
MODALITIES: Final = ("facial", "language", "audio", "body", "inconsistency")

TABLES: Final[dict[str, dict[str, pl.DataType | type[pl.DataType]]]] = {
    "participants": {
        "participant_id": pl.String,
        "age": pl.Int16,
        "age_range": pl.String,
        "birth_country": pl.String,
        "province": pl.String,
        "ethnicity": pl.String,
        "ethnicity_simplified": pl.String,
        "gender": pl.String,
        "is_student": pl.Boolean,
        "consent_challenges": pl.Boolean,
        "consent_publications": pl.Boolean,
        "split": pl.String,
    },
    "exclusions": {
        "participant_id": pl.String,
        "reason": pl.String,
        "n_videos": pl.Int32,
    },
    "videos": {
        "video_id": pl.String,
        "participant_id": pl.String,
        "visit": pl.String,
        "question": pl.Int8,
        "release_id": pl.String,
        "path": pl.String,
        "source": pl.String,
        "duration_s": pl.Float64,
        "fps": pl.Float64,
        "n_frames": pl.Int32,
        "has_audio": pl.Boolean,
        "global_label": pl.Int8,
        "split": pl.String,
        "annotator_id": pl.String,
        "transcript": pl.String,
    },
    "segments": {
        "video_id": pl.String,
        "participant_id": pl.String,
        "segment": pl.Int16,
        "start_frame": pl.Int32,
        "end_frame": pl.Int32,
        "start_s": pl.Float64,
        "end_s": pl.Float64,
        "certainty": pl.String,
        "annotator_id": pl.String,
    },
    "cues": {
        "video_id": pl.String,
        "participant_id": pl.String,
        "segment": pl.Int16,
        "modality": pl.String,
        "cue": pl.String,
    },
    "frame_labels": {
        "video_id": pl.String,
        "participant_id": pl.String,
        "frame": pl.Int32,
        "label": pl.Int8,
        "split": pl.String,
    },
    "transcripts": {
        "video_id": pl.String,
        "participant_id": pl.String,
        "chunk": pl.Int16,
        "start_s": pl.Float64,
        "end_s": pl.Float64,
        "window": pl.Int16,
        "language": pl.String,
        "text": pl.String,
    },
    "quarantine": {
        "video_id": pl.String,
        "participant_id": pl.String,
        "path": pl.String,
        "stage": pl.String,
        "reason": pl.String,
        "kind": pl.String,
        "quarantined_at": pl.String,
    },
    "featuresets": {
        "feature_set": pl.String,
        "extractor": pl.String,
        "model_sha256": pl.String,
        "config": pl.String,
        "arrays": pl.String,
        "created": pl.String,
        "videos": pl.Int32,
        "rows": pl.Int64,
    },
    "extracted": {
        "feature_set": pl.String,
        "video_id": pl.String,
        "participant_id": pl.String,
        "n_frames": pl.Int32,
        "written_at": pl.String,
        "device": pl.String,
    },
    "asr_words": {
        "feature_set": pl.String,
        "video_id": pl.String,
        "participant_id": pl.String,
        "word_index": pl.Int32,
        "word": pl.String,
        "start_s": pl.Float64,
        "end_s": pl.Float64,
        "probability": pl.Float64,
        "interpolated": pl.Boolean,
        "first_frame": pl.Int32,
        "last_frame": pl.Int32,
        "language": pl.String,
    },
    "withdrawals": {
        "subject_sha256": pl.String,
        "withdrawn_at": pl.String,
    },
    "audit": {
        "event_id": pl.String,
        "at": pl.String,
        "operator": pl.String,
        "action": pl.String,
        "subject_sha256": pl.String,
        "detail": pl.String,
    },
    "batches": {
        "batch": pl.String,
        "source": pl.String,
        "fingerprint": pl.String,
        "ingested_at": pl.String,
        "participants": pl.Int32,
        "videos": pl.Int32,
        "excluded": pl.Int32,
        "quarantined": pl.Int32,
    },
    "extract_runs": {
        "run_id": pl.String,
        "started_at": pl.String,
        "finished_at": pl.String,
        "feature_sets": pl.String,
        "batches": pl.Int32,
        "extracted": pl.Int32,
        "skipped": pl.Int32,
        "busy": pl.Int32,
        "quarantined": pl.Int32,
        "frames": pl.Int64,
        "detail": pl.String,
    },
    "bugs": {
        "video_id": pl.String,
        "participant_id": pl.String,
        "run_id": pl.String,
        "at": pl.String,
        "error": pl.String,
        "traceback": pl.String,
    },
    "splits": {
        "video_id": pl.String,
        "participant_id": pl.String,
        "split": pl.String,
        "label": pl.Int8,
    },
}


#: Tables written by `bahfs ingest` (the others are kept by the store itself).
INGEST_TABLES: Final = ("participants", "exclusions", "videos", "segments", "cues",
                        "frame_labels", "transcripts", "splits", "quarantine")


def schema(table: str) -> pl.Schema:
    """The declared schema of ``table``."""
    if table not in TABLES:
        raise StoreError(f"unknown table {table!r}", expected=", ".join(sorted(TABLES)))
    return pl.Schema(TABLES[table])


def conform(table: str, df: pl.DataFrame) -> pl.DataFrame:
    """Select and cast ``df`` to the declared schema of ``table`` (column order too).

    Raises :class:`StoreError` naming the missing columns instead of guessing.
    """
    declared = schema(table)
    if df.width == 0:
        return empty(table)
    missing = [c for c in declared.names() if c not in df.columns]
    if missing:
        raise StoreError(
            f"table {table!r} lacks columns {missing}", expected=", ".join(declared.names())
        )
    return df.select([pl.col(c).cast(t, strict=True) for c, t in declared.items()])


def empty(table: str) -> pl.DataFrame:
    """An empty frame with the declared schema of ``table``."""
    return pl.DataFrame(schema=schema(table))
