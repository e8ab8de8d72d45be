"""Consent withdrawal: remove a participant from every array and table, remember it.

Order matters: the withdrawal is recorded first (so no later ingest or extraction
can bring the participant back, even if the purge is interrupted), then features
are removed (renamed out of sight, then deleted; with what dead writers left in
staging, which may hold a copy of one of their videos), then every table is rewritten
without them (and the run log's mentions of their videos, and the lock files named
after them), then the purge is written to the audit table. Running it again
finishes an interrupted purge. Audit and withdrawal rows hold a SHA-256 of the id,
never the id or any personal data.
"""

from __future__ import annotations

import getpass
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from store.backend import Store, VideoRef
from store.consent import subject_hash, withdrawn
from store.errors import NotFoundError, StoreError
from store.layout import check_name
from store.local import as_store
from store.schema import TABLES
from store.tables import utc_now


@dataclass(frozen=True)
class PurgeReport:
    subject_sha256: str
    feature_videos_removed: int
    rows_removed: dict[str, int]
    #: the runs (Prefect flow run ids) whose records named the participant's videos:
    #: the Prefect server keeps their task names, parameters and logs (the purge does
    #: not reach it; docs/reliability.md says how)
    prefect_runs: tuple[str, ...] = ()
    lock_files_removed: int = 0


def scrub_videos(detail: Any, keep: Callable[[str], bool]) -> Any:
    """``detail`` (a run's JSON detail) without the videos ``keep`` rejects: mapping keys
    and list items that are video ids, at any depth."""
    if isinstance(detail, dict):
        return {k: scrub_videos(v, keep) for k, v in detail.items() if keep(str(k))}
    if isinstance(detail, list):
        return [scrub_videos(v, keep) for v in detail if not isinstance(v, str) or keep(v)]
    return detail


def _scrub_runs(store: Store, participant_id: str, videos: set[str]) -> list[str]:
    """Remove the participant's videos (``videos``, and every id of the store's form
    ``<participant>__...``) from every ``extract_runs`` row's detail; the run ids of
    the rows changed."""
    if not store.table_exists("extract_runs"):
        return []
    runs = store.read_table("extract_runs")
    details = runs["detail"].to_list()

    def keep(video_id: str) -> bool:
        return video_id not in videos and not video_id.startswith(f"{participant_id}__")

    scrubbed = [json.dumps(scrub_videos(json.loads(d), keep), sort_keys=True) if d else d
                for d in details]
    changed = [r for r, a, b in zip(runs["run_id"].to_list(), details, scrubbed, strict=True)
               if a != b]
    if changed:
        store.write_table("extract_runs", runs.with_columns(pl.Series("detail", scrubbed)))
    return changed


def _remove_locks(store: Store, videos: set[str]) -> int:
    """Remove the lock files named after the participant's videos; how many. A run
    still holding one keeps its lock (on the unlinked file), and whatever claims the
    video after this is refused at publishing: the withdrawal is recorded first."""
    return sum(store.remove_video_lock(vid) for vid in videos)


def _append(store: Store | Path, name: str, row: dict[str, str]) -> None:
    st = as_store(store)
    new = pl.DataFrame([row], schema=pl.Schema(TABLES[name]))
    st.write_table(name, pl.concat([st.read_table_or_empty(name), new]))


def unpublish_video(store: Store | Path, participant_id: str, video_id: str,
                    fs_ids: list[str]) -> None:
    """Remove one video from the given feature sets, and the participant's folder in
    each where no video of theirs is left (a withdrawal that raced a publish)."""
    st = as_store(store)
    for fs in fs_ids:
        st.unpublish(VideoRef(fs, participant_id, video_id))


#: what a participant id is, said in refusals
PARTICIPANT_FORM = ("a participant id as the release spells it: the folder under Videos/ "
                    "(e.g. 82553), no '_', '/' or space")


def _known_participants(store: Store) -> set[str]:
    return {p for name in ("participants", "exclusions", "videos", "quarantine")
            for p in store.read_table_or_empty(name)["participant_id"].to_list()}


def check_participant(store: Store | Path, participant_id: str, *,
                      not_arrived: bool = False) -> str:
    """``participant_id`` when a purge of it in ``store`` is meant: a participant id
    (never a video id or a path), that the store holds (or held: a withdrawal run
    again finishes), or, with ``not_arrived``, one whose data has not arrived yet."""
    st = as_store(store)
    if any(c in participant_id for c in "_/ ") or not participant_id:
        owner = st.read_table_or_empty("videos").filter(
            (pl.col("video_id") == participant_id) | (pl.col("release_id") == participant_id)
            | (pl.col("path") == participant_id))["participant_id"].to_list()
        what = f"a video id, of participant {owner[0]}" if owner else "not a participant id"
        raise StoreError(f"{participant_id!r} is {what}", expected=PARTICIPANT_FORM)
    check_name("participant", participant_id)
    if participant_id in _known_participants(st) or \
            subject_hash(participant_id) in withdrawn(st) or not_arrived:
        return participant_id
    raise NotFoundError(f"participant {participant_id} is not in this store; nothing "
                        "recorded", path=st.location,
                        expected="an id of the participants table, or --not-arrived-yet "
                                 "to record the withdrawal before their data arrives")


def _purge_tables(store: Store, participant_id: str) -> dict[str, int]:
    """Rewrite every table holding rows of ``participant_id`` without them; rows removed
    per table."""
    rows_removed: dict[str, int] = {}
    for name, cols in TABLES.items():
        if "participant_id" not in cols or not store.table_exists(name):
            continue
        df = store.read_table(name)
        kept = df.filter(pl.col("participant_id") != participant_id)
        if kept.height != df.height:
            store.write_table(name, kept)
        rows_removed[name] = df.height - kept.height
    return rows_removed


def purge_participant(store: Store | Path, participant_id: str, *,
                      operator: str | None = None,
                      reason: str = "consent withdrawn") -> PurgeReport:
    """Remove ``participant_id`` everywhere in ``store``; record and audit it."""
    check_name("participant", participant_id)
    st = as_store(store)
    with st.lock():
        now = utc_now()
        subject = subject_hash(participant_id)
        if subject not in withdrawn(st):
            _append(st, "withdrawals", {"subject_sha256": subject, "withdrawn_at": now})
        removed_videos = st.remove_participant(participant_id)
        st.clean_staging()  # a dead writer's staged copy of one of their videos
        theirs = {v for v in st.read_table_or_empty("videos").filter(
            pl.col("participant_id") == participant_id)["video_id"].to_list()}
        named = _scrub_runs(st, participant_id, theirs)
        locks = _remove_locks(st, theirs)
        rows_removed = {"extract_runs (detail)": len(named),
                        **_purge_tables(st, participant_id)}
        _append(st, "audit", {
            "event_id": uuid.uuid4().hex, "at": now, "operator": operator or getpass.getuser(),
            "action": "purge", "subject_sha256": subject,
            "detail": json.dumps({"reason": reason, "feature_videos_removed": removed_videos,
                                  "rows_removed": rows_removed}, sort_keys=True)})
    return PurgeReport(subject, removed_videos, rows_removed, tuple(named), locks)
