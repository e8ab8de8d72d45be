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

from store.access import drifting
from store.consent import subject_hash, withdrawn
from store.errors import BahfsError
from store.features import FeatureSetSpec
from store.layout import STAGING, features_root, is_published, read_attrs
from store.reader import array_meta
from store.schema import INGEST_TABLES
from store.tables import read_table, read_table_or_empty


@dataclass(frozen=True)
class Problem:
    severity: str  # "error" | "warning"
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.what}"


def _check_array(path: Path, n: int, dtype: str, shape: tuple[int, ...], where: str
                 ) -> list[Problem]:
    try:
        meta = array_meta(path)
    except (BahfsError, ValueError, KeyError, TypeError):
        return [Problem("error", where, f"array {path.name!r} missing or unreadable")]
    want = (n, *shape)
    if meta.shape != want or meta.dtype != np.dtype(dtype):
        return [Problem("error", where, f"array {path.name!r} is {meta.dtype}"
                        f"{list(meta.shape)}, expected {dtype}{list(want)}")]
    if meta.absent_chunk:
        return [Problem("warning", where, f"array {path.name!r} has no chunk file: it reads "
                                          "as its fill value throughout")]
    if meta.raw_chunk is not None:
        f = meta.raw_chunk
        size = meta.shape[0] * meta.row_bytes
        if not f.is_file() or f.stat().st_size != size:
            got = f.stat().st_size if f.is_file() else "no"
            return [Problem("error", where,
                            f"array {path.name!r} chunk holds {got} bytes, expected {size}")]
    return []


#: drifting paths named one by one; beyond, one line says how many more
SHOW_DRIFT = 20


def _access_problems(store: Path) -> list[Problem]:
    drift = drifting(store)
    problems = [Problem("error", str(p.relative_to(store)) if p != store else ".",
                        f"access: {what} (`bahfs verify --fix` repairs it)")
                for p, what in drift[:SHOW_DRIFT]]
    if len(drift) > SHOW_DRIFT:
        problems.append(Problem("error", ".", f"access: {len(drift) - SHOW_DRIFT} more "
                                              "paths differ from the store's access policy "
                                              "(`bahfs verify --fix` repairs them)"))
    return problems


def lost_videos(store: Path) -> list[tuple[str, str, str]]:
    """``(feature set, participant, video)`` recorded as extracted, no longer published."""
    recorded = read_table_or_empty(store, "extracted")
    return [(fs, pid, vid) for fs, pid, vid in recorded.select(
        "feature_set", "participant_id", "video_id").iter_rows()
        if not is_published(store, fs, pid, vid)]


def verify_store(store: Path) -> list[Problem]:
    """Every problem found in ``store`` (empty list: the store is valid)."""
    store = Path(store)
    problems = _access_problems(store) if store.is_dir() else []
    tables = {}
    for name in INGEST_TABLES:
        try:
            tables[name] = read_table(store, name)
        except BahfsError as exc:
            problems.append(Problem("error", f"tables/{name}", exc.message))
    if "videos" not in tables:
        return problems
    videos = {r[0]: (r[1], r[2]) for r in
              tables["videos"].select("video_id", "participant_id", "n_frames").iter_rows()}
    gone = withdrawn(store)
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
    root = features_root(store)
    for fs in sorted(d for d in root.iterdir() if d.is_dir()) if root.is_dir() else []:
        try:
            spec = FeatureSetSpec.from_attrs(read_attrs(fs))
        except BahfsError as exc:
            problems.append(Problem("error", f"features/{fs.name}",
                                    f"no provenance: {exc.message}"))
            continue
        if not spec.model_sha256 or spec.id != fs.name:
            problems.append(Problem("error", f"features/{fs.name}",
                                    "provenance does not match the feature set id"))
        for pdir in sorted(d for d in fs.iterdir() if d.is_dir()):
            if subject_hash(pdir.name) in gone:
                problems.append(Problem("error", f"features/{fs.name}/{pdir.name}",
                                        "withdrawn participant still has features"))
            for vdir in sorted(d for d in pdir.iterdir() if d.is_dir()):
                where = f"features/{fs.name}/{pdir.name}/{vdir.name}"
                known = videos.get(vdir.name)
                if known is None or known[0] != pdir.name:
                    problems.append(Problem("error", where,
                                            "orphan: video not in the videos table"))
                    continue
                n = known[1]
                try:
                    attrs = read_attrs(vdir)
                except BahfsError:
                    problems.append(Problem("error", where, "video group has no metadata"))
                    continue
                if attrs.get("n_frames") != n:
                    problems.append(Problem("error", where, f"n_frames {attrs.get('n_frames')}"
                                            f" but the video has {n} frames"))
                problems += _check_array(vdir / "timestamps", n, "float64", (), where)
                for a in spec.arrays:
                    problems += _check_array(vdir / a.name, n, a.dtype, a.shape, where)
    for fs_id, pid, vid in lost_videos(store):
        problems.append(Problem("error", f"features/{fs_id}/{pid}/{vid}",
                                "recorded as extracted but no longer in the store: lost "
                                "(`bahfs verify --fix` re-queues it for the next extract)"))
    staging = store / STAGING
    if staging.is_dir():
        for d in staging.iterdir():
            problems.append(Problem("warning", f"{STAGING}/{d.name}",
                                    "unfinished write (removed by the next writer)"))
    return problems
