"""Reversible quarantine: list the videos quarantined, put them back to pending.

A video is quarantined only for an input fault (:data:`store.failures.INPUT_KINDS`),
at ``ingest`` (the probe, or labels that do not fit) or at ``extract`` (decoding,
the frame count). :func:`release` removes the chosen rows from the ``quarantine``
table, so that:

* a video quarantined at ``extract`` is pending again: the next extract decodes and
  extracts it (it is still in the ``videos`` table);
* a video quarantined at ``ingest`` was never in the ``videos`` table: the batch
  that holds its file is marked for ingest again (its ``batches`` row gets a
  fingerprint that matches no folder), so the next ``bahfs extract`` or ``bahfs
  ingest --merge`` probes the batch's videos again; a store ingested whole from one
  release (no ``batches`` rows) probes everything on its next ``bahfs ingest``.

Each release is recorded in the ``audit`` table, one row per video, without
personal data: the participant's SHA-256 (as a purge records it), the video id's
SHA-256, the stage and the kind of fault it was quarantined for.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from store.backend import Store
from store.consent import subject_hash
from store.errors import ConfigError, NotFoundError
from store.local import as_store
from store.schema import empty
from store.tables import utc_now

STAGES = ("ingest", "extract")
RELEASED = "released"  # the fingerprint a requeued batch gets: it matches no folder


@dataclass
class ReleaseReport:
    released: dict[str, str] = field(default_factory=dict)  # video -> stage
    batches_requeued: list[str] = field(default_factory=list)


def quarantined(store: Store | Path, stage: str | None = None) -> pl.DataFrame:
    """The ``quarantine`` table (of one stage), oldest first."""
    q = as_store(store).read_table_or_empty("quarantine")
    if stage is not None:
        q = q.filter(pl.col("stage") == _stage(stage))
    return q.sort("quarantined_at", "video_id", nulls_last=False)


def _stage(stage: str) -> str:
    if stage not in STAGES:
        raise ConfigError(f"unknown quarantine stage {stage!r}", expected=" or ".join(STAGES))
    return stage


def release(store: Store | Path, video_ids: list[str] | None = None, *,
            everything: bool = False, stage: str | None = None,
            operator: str | None = None) -> ReleaseReport:
    """Put quarantined videos back to pending: ``video_ids``, or ``everything``
    (of ``stage`` when given). Ids that are not quarantined are an error naming
    them; nothing is released then."""
    st = as_store(store)
    if not video_ids and not everything and stage is None:
        raise ConfigError("nothing chosen to release",
                          expected="video ids, --all, or --stage ingest|extract")
    report = ReleaseReport()
    with st.lock():
        q = st.read_table_or_empty("quarantine")
        chosen = pl.lit(True)
        if video_ids:
            unknown = sorted(set(video_ids) - set(q["video_id"].to_list()))
            if unknown:
                raise NotFoundError(f"not quarantined: {', '.join(unknown)}",
                                    path=st.location,
                                    expected="ids listed by `bahfs quarantine list`")
            chosen = pl.col("video_id").is_in(video_ids)
        if stage is not None:
            chosen = chosen & (pl.col("stage") == _stage(stage))
        picked = q.filter(chosen)
        if not picked.height:
            return report
        report.batches_requeued = _requeue_batches(st, picked.filter(
            pl.col("stage") == "ingest")["path"].to_list())
        st.write_table("quarantine", q.filter(~chosen))
        now, who = utc_now(), operator or getpass.getuser()
        rows = [{"event_id": uuid.uuid4().hex, "at": now, "operator": who,
                 "action": "quarantine-release", "subject_sha256": subject_hash(pid),
                 "detail": json.dumps({"video_sha256": hashlib.sha256(vid.encode()).hexdigest(),
                                       "stage": st, "kind": kind or ""}, sort_keys=True)}
                for vid, pid, st, kind in picked.select(
                    "video_id", "participant_id", "stage", "kind").iter_rows()]
        audit = pl.concat([st.read_table_or_empty("audit"),
                           pl.DataFrame(rows, schema=empty("audit").schema)])
        st.write_table("audit", audit)
        report.released = dict(picked.select("video_id", "stage").iter_rows())
    return report


def _requeue_batches(store: Store, paths: list[str]) -> list[str]:
    """Mark for ingest again the batches that hold any of ``paths`` (relative to a
    batch folder); their names."""
    batches = store.read_table_or_empty("batches")
    if not paths or not batches.height:
        return []
    hit = [src for src in batches["source"].to_list()
           if any((Path(src) / p).exists() for p in paths)]
    if hit:
        store.write_table("batches", batches.with_columns(
            pl.when(pl.col("source").is_in(hit)).then(pl.lit(RELEASED))
            .otherwise(pl.col("fingerprint")).alias("fingerprint")))
    return sorted(batches.filter(pl.col("source").is_in(hit))["batch"].to_list())
