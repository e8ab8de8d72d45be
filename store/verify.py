"""Check a store against its tables: every problem named precisely, nothing repaired.

Errors: a table missing or off its schema; a feature set without provenance; a
video group whose video or participant is not in the tables (orphan) or is
withdrawn (only ``exclusions`` may name who withdrew or took consent back: it
holds no data of theirs); an array
missing, of the wrong dtype or shape, or whose first dimension is not the video's
frame count; a raw chunk file of the wrong size; frame labels not one per frame; a
video the ``extracted`` table records (as the last extract run or catalog refresh saw
it) that is no longer published: lost.
Access: every path whose mode or group differs from the store's access policy
(:mod:`store.access`; an error: it may expose participants' data, or hide it from
the group); :func:`store.access.fix_drift` repairs them.
Warnings: staging left by a crashed writer; an array whose chunk file is absent
(valid Zarr: it reads as its fill value, but the writer never leaves one out).
:func:`lost_videos` lists the lost ones; refreshing the catalog re-queues them
(the next extract restores them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from store.backend import Store, VideoRef
from store.consent import subject_hash, withdrawn
from store.errors import BahfsError
from store.features import FeatureSetSpec
from store.layout import STAGING
from store.local import as_store
from store.schema import INGEST_TABLES

#: (participant id, frames) of each video of the videos table
Videos = dict[str, tuple[str, int]]


@dataclass(frozen=True)
class Problem:
    severity: str  # "error" | "warning"
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.what}"


def _check_array(st: Store, ref: VideoRef, name: str, n: int, dtype: str,
                 shape: tuple[int, ...], where: str) -> list[Problem]:
    try:
        meta = st.array_meta(ref, name)
    except (BahfsError, ValueError, KeyError, TypeError):
        return [Problem("error", where, f"array {name!r} missing or unreadable")]
    want = (n, *shape)
    if meta.shape != want or meta.dtype != np.dtype(dtype):
        return [Problem("error", where, f"array {name!r} is {meta.dtype}"
                        f"{list(meta.shape)}, expected {dtype}{list(want)}")]
    if meta.absent_chunk:
        return [Problem("warning", where, f"array {name!r} has no chunk file: it reads "
                                          "as its fill value throughout")]
    size = meta.shape[0] * meta.row_bytes
    got: int | str | None = None
    if meta.raw_chunk is not None:
        f = meta.raw_chunk
        got = f.stat().st_size if f.is_file() else "no"
    elif meta.raw_size is not None:  # object storage: the chunk object's size
        got = meta.raw_size
    if got is not None and got != size:
        return [Problem("error", where, f"array {name!r} chunk holds {got} bytes, "
                                        f"expected {size}")]
    return []


#: drifting paths named one by one; beyond, one line says how many more
SHOW_DRIFT = 20


def _access_problems(st: Store) -> list[Problem]:
    drift = st.access_drift()
    problems = [Problem("error", where, f"access: {what} (`bahfs verify --fix` repairs it)")
                for where, what in drift[:SHOW_DRIFT]]
    if len(drift) > SHOW_DRIFT:
        problems.append(Problem("error", ".", f"access: {len(drift) - SHOW_DRIFT} more "
                                              "paths differ from the store's access policy "
                                              "(`bahfs verify --fix` repairs them)"))
    return problems


def lost_videos(store: Store | Path) -> list[tuple[str, str, str]]:
    """``(feature set, participant, video)`` recorded as extracted, no longer published."""
    st = as_store(store)
    recorded = st.read_table_or_empty("extracted")
    return [(fs, pid, vid) for fs, pid, vid in recorded.select(
        "feature_set", "participant_id", "video_id").iter_rows()
        if not st.is_published(VideoRef(fs, pid, vid))]


def _read_tables(st: Store) -> tuple[dict[str, pl.DataFrame], list[Problem]]:
    tables, problems = {}, []
    for name in INGEST_TABLES:
        try:
            tables[name] = st.read_table(name)
        except BahfsError as exc:
            problems.append(Problem("error", f"tables/{name}", exc.message))
    return tables, problems


def _table_problems(tables: dict[str, pl.DataFrame], videos: Videos, gone: set[str]
                    ) -> list[Problem]:
    """Withdrawn participants left in a table; frame labels not one per frame."""
    problems = []
    for name, df in tables.items():
        # ``exclusions`` lists who is out and why, with no data of theirs: a withdrawal
        # (WITHDREW), or a re-delivery that took consent back ("declined use in ...")
        if "participant_id" in df.columns and gone and name != "exclusions":
            hit = [p for p in df["participant_id"].unique().to_list() if subject_hash(p) in gone]
            if hit:
                problems.append(Problem("error", f"tables/{name}",
                                        f"{len(hit)} withdrawn participant(s) still present"))
    if "frame_labels" in tables:
        counts = dict(tables["frame_labels"].group_by("video_id").len().iter_rows())
        labelled = set(tables["videos"].filter(pl.col("global_label").is_not_null())
                       ["video_id"].to_list())  # a withheld label has no frame labels
        for vid, (_, n) in videos.items():
            if vid in labelled and counts.get(vid) != n:
                problems.append(Problem("error", f"tables/frame_labels/{vid}",
                                        f"{counts.get(vid, 0)} labels for {n} frames"))
    return problems


def _video_problems(st: Store, ref: VideoRef, spec: FeatureSetSpec, videos: Videos
                    ) -> list[Problem]:
    where = f"features/{ref.feature_set}/{ref.participant_id}/{ref.video_id}"
    known = videos.get(ref.video_id)
    if known is None or known[0] != ref.participant_id:
        return [Problem("error", where, "orphan: video not in the videos table")]
    n = known[1]
    try:
        attrs = st.video_attrs(ref)
    except BahfsError:
        return [Problem("error", where, "video group has no metadata")]
    problems = []
    if attrs.get("n_frames") != n:
        problems.append(Problem("error", where, f"n_frames {attrs.get('n_frames')}"
                                f" but the video has {n} frames"))
    problems += _check_array(st, ref, "timestamps", n, "float64", (), where)
    for a in spec.arrays:
        problems += _check_array(st, ref, a.name, n, a.dtype, a.shape, where)
    return problems


def _feature_set_problems(st: Store, fs: str, videos: Videos, gone: set[str]
                          ) -> list[Problem]:
    try:
        spec = st.spec(fs)
    except BahfsError as exc:
        return [Problem("error", f"features/{fs}", f"no provenance: {exc.message}")]
    problems = []
    if not spec.model_sha256 or spec.id != fs:
        problems.append(Problem("error", f"features/{fs}",
                                "provenance does not match the feature set id"))
    for pid in st.participants(fs):
        if subject_hash(pid) in gone:
            problems.append(Problem("error", f"features/{fs}/{pid}",
                                    "withdrawn participant still has features"))
        for ref in st.video_entries(fs, pid):
            problems += _video_problems(st, ref, spec, videos)
    return problems


def verify_store(store: Store | Path) -> list[Problem]:
    """Every problem found in ``store`` (empty list: the store is valid)."""
    st = as_store(store)
    problems = _access_problems(st)
    tables, unreadable = _read_tables(st)
    problems += unreadable
    if "videos" not in tables:
        return problems
    videos: Videos = {r[0]: (r[1], r[2]) for r in tables["videos"].select(
        "video_id", "participant_id", "n_frames").iter_rows()}
    gone = withdrawn(st)
    problems += _table_problems(tables, videos, gone)
    for fs in st.feature_set_folders():
        problems += _feature_set_problems(st, fs, videos, gone)
    for fs_id, pid, vid in lost_videos(st):
        problems.append(Problem("error", f"features/{fs_id}/{pid}/{vid}",
                                "recorded as extracted but no longer in the store: lost "
                                "(`bahfs verify --fix` re-queues it for the next extract)"))
    problems += [Problem("warning", f"{STAGING}/{name}",
                         "unfinished write (removed by the next writer)")
                 for name in st.staging_entries()]
    return problems
