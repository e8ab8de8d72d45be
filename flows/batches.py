"""Batches: consented deliveries that arrive as folders under a watched inbox.

A batch is a folder in the BAH release layout, any variant (its own
``meta_data.yml``, annotation file, ``Videos/``...) holding some participants. The
inbox is either one such folder or a folder of them. :func:`find_batches` lists the
batches that are complete (annotation files present, nothing changed for
``settle_s`` seconds, so a copy still in progress is not picked up);
:func:`pending_batches` keeps those whose fingerprint the store has not ingested;
:func:`ingest_batch` merges one into the tables:

* rows of the batch's videos (and participants) replace earlier rows of the same
  ids, everything else stays: a re-delivered batch replaces itself, never duplicates;
* a participant the batch marks as not consenting is excluded, and one who had
  data from an earlier batch is purged everywhere (:mod:`store.purge`);
* the ``batches`` table records the fingerprint, so an unchanged batch is not
  ingested again;
* a store in a bucket is given each video the batch lets in (``sources/``,
  :func:`store.ingest.upload_sources`), for workers that cannot see the batch.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from store.backend import Store
from store.consent import ConsentPolicy
from store.errors import DatasetLayoutError
from store.ingest import (
    IngestReport,
    build_tables,
    drop_withdrawn,
    report_of,
    upload_sources,
    write_ingest_manifest,
)
from store.local import as_store
from store.purge import purge_participant
from store.release import codebook as cb
from store.release.layout import ANNOTATION_VARIANTS
from store.schema import INGEST_TABLES, empty
from store.tables import utc_now

#: A folder is a release (batch) when it holds the participants file and one of the
#: annotation files in circulation.
ANNOTATION_FILES = tuple(ANNOTATION_VARIANTS)


@dataclass(frozen=True)
class Batch:
    name: str
    root: Path
    fingerprint: str


def _markers(folder: Path) -> list[Path]:
    """The files whose bytes identify a release: meta data and its annotation file(s)."""
    return [folder / m for m in (cb.META_YML, *ANNOTATION_FILES) if (folder / m).is_file()]


def _is_release(folder: Path) -> bool:
    return (folder / cb.META_YML).is_file() and len(_markers(folder)) > 1


def _files(root: Path) -> list[tuple[str, os.stat_result]]:
    """Every file under ``root`` (hidden ones aside): relative name and stat, sorted."""
    return sorted((p.relative_to(root).as_posix(), p.stat()) for p in root.rglob("*")
                  if p.is_file() and not p.name.startswith("."))


def fingerprint(root: Path, files: list[tuple[str, os.stat_result]] | None = None) -> str:
    """SHA-256 over the annotation files' bytes and every file's name, size, mtime."""
    h = hashlib.sha256()
    for m in _markers(root):
        h.update(m.read_bytes())
    for name, st in _files(root) if files is None else files:
        h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def find_batches(inbox: Path, settle_s: float = 0.0) -> list[Batch]:
    """Complete batches under ``inbox`` (or ``inbox`` itself when it is a release)."""
    inbox = Path(inbox)
    if not inbox.is_dir():
        raise DatasetLayoutError("inbox folder not found", path=inbox,
                                 expected="a release folder, or a folder of release folders")
    if _is_release(inbox):
        folders = [inbox]
    else:
        folders = sorted(d for d in inbox.iterdir() if d.is_dir() and _is_release(d))
    now = time.time()
    batches = []
    for folder in folders:
        files = _files(folder)
        if settle_s <= 0 or all(now - st.st_mtime >= settle_s for _, st in files):
            batches.append(Batch(folder.name, folder.resolve(), fingerprint(folder, files)))
    return batches


def pending_batches(store: Store | Path, batches: list[Batch]) -> list[Batch]:
    """The batches whose current fingerprint the store has not ingested yet."""
    done = as_store(store).read_table_or_empty("batches")
    seen = set(zip(done["source"].to_list(), done["fingerprint"].to_list(), strict=True))
    return [b for b in batches if (str(b.root), b.fingerprint) not in seen]


def ingest_batch(batch: Batch, store: Store | Path, policy: ConsentPolicy | None = None,
                 workers: int = 8) -> IngestReport:
    """Merge ``batch`` into the store's tables (see the module docstring).

    Crash-safe in this order: participants the batch no longer lets in are purged
    first (a purge records the withdrawal before it removes anything, and finishes
    when run again), then the tables are merged and the manifest written, and the
    ``batches`` row that marks the batch done comes last; a run killed anywhere
    before it ingests the whole batch again, which replaces the same rows."""
    policy = policy or ConsentPolicy()
    st = as_store(store)
    built = build_tables(batch.root, st, policy, workers)
    with st.lock():
        had_data = set(st.read_table_or_empty("participants")["participant_id"].to_list())
    excluded = set(built.tables["exclusions"]["participant_id"].to_list())
    for pid in sorted(excluded & had_data):  # consent gone: remove what earlier batches left
        purge_participant(st, pid, reason=f"consent not given in batch {batch.name}")
    pids, vids = set(built.participant_ids), set(built.video_ids)
    upload_sources(st, built.tables["videos"])  # before the tables name the videos
    with st.lock():
        built = drop_withdrawn(built, st)  # a purge that ran while the batch was read
        excluded = set(built.tables["exclusions"]["participant_id"].to_list())
        for name in INGEST_TABLES:
            old = st.read_table_or_empty(name)
            if name in ("participants", "exclusions"):
                drop = pl.col("participant_id").is_in(list(pids))
            else:
                drop = (pl.col("video_id").is_in(list(vids))
                        | pl.col("participant_id").is_in(list(excluded)))
            st.write_table(name, pl.concat([old.filter(~drop), built.tables[name]]))
        row = pl.DataFrame([{
            "batch": batch.name, "source": str(batch.root), "fingerprint": batch.fingerprint,
            "ingested_at": utc_now(),
            "participants": built.tables["participants"].height,
            "videos": built.tables["videos"].height, "excluded": len(excluded),
            "quarantined": len(built.quarantined)}], schema=empty("batches").schema)
        done = st.read_table_or_empty("batches").filter(pl.col("source") != str(batch.root))
        sources = sorted(set(done["source"].to_list()) | {str(batch.root)})
        write_ingest_manifest(st, sources, policy, built.frame_base, built.notes)
        st.write_table("batches", pl.concat([done, row]))
    return report_of(st, built.tables, built.quarantined, built.notes)
