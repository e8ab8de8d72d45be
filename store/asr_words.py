"""The words bahfs transcribed, as a table: one row per word of every video in every
``words`` feature set, read from the transcript each video keeps in its attributes
(the hierarchy stays the single source of truth; the catalog refresh rewrites the
``asr_words`` table from it, so a purged participant's words go with their videos).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from store.backend import Store
from store.errors import CorruptError
from store.local import as_store
from store.schema import empty


def transcript_rows(feature_set: str, video_id: str, participant_id: str,
                    transcript: str | dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the ``asr_words`` table for one video's transcript (JSON or parsed)."""
    try:
        t = json.loads(transcript) if isinstance(transcript, str) else transcript
        words = t.get("words", [])
    except (ValueError, AttributeError) as exc:
        raise CorruptError(f"unreadable transcript: {exc}", participant=participant_id,
                           video=video_id, expected="a JSON object with a words list") from exc
    return [{"feature_set": feature_set, "video_id": video_id,
             "participant_id": participant_id, "word_index": i, "word": w.get("word"),
             "start_s": w.get("start"), "end_s": w.get("end"),
             "probability": w.get("probability"), "interpolated": w.get("interpolated"),
             "first_frame": w.get("first_frame"), "last_frame": w.get("last_frame"),
             "language": t.get("language")} for i, w in enumerate(words)]


def words_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=empty("asr_words").schema)


def asr_words_table(store: Store | Path) -> pl.DataFrame:
    """Every transcribed word of the store (all ``words`` feature sets)."""
    st = as_store(store)
    rows: list[dict[str, Any]] = []
    for fs in st.feature_set_ids():
        if st.feature_set_attrs(fs).get("extractor") != "words":
            continue
        for ref in st.videos(fs):
            a = st.video_attrs(ref)
            if "transcript" in a:
                rows += transcript_rows(fs, ref.video_id, ref.participant_id,
                                        a["transcript"])
    return words_frame(rows)
