"""A local cache of a bucket's arrays: a store in a bucket read at local speed after
the first read of each array.

:class:`S3Cache` is a folder of this host, bounded in bytes. An array in the
writer's layout (one uncompressed little-endian chunk, :func:`store.arrays.layout_of`)
is fetched whole the first time a process opens it (two GETs: its ``zarr.json`` and
its chunk, streamed to a file), then served by the local fast path
(:func:`store.arrays.open_array`: memory-mapped, no request per window). An entry
is one video of one feature set, keyed by a SHA-256 of the endpoint, the store's
address, the feature set, participant and video ids and the ETag of the video's
group ``zarr.json`` (its publication): a video published again (overwritten) has a
new ETag, so a new entry, fetched afresh; its old entry is left for eviction.

Layout: ``<root>/entries/<key>/entry.json`` (the store address, ids and ETag it was
fetched for) and ``<root>/entries/<key>/<array>/`` (the array as the store holds
it); ``<root>/tmp/`` holds arrays being fetched. An array appears in its entry by
one rename, so concurrent readers (DataLoader workers forked from one process, or
several runs on the host) see it whole or not at all; of two fetching the same
array, the second's copy is dropped. Folders are made ``0700``: the cache holds
participants' features. No credential is in a path or a file.

Bounded: each process counts what it fetched on top of one scan of the folder;
when that count passes the budget, and every 64 fetches, it scans again and removes
least recently used entries (by their folder's modification time, touched on every
hit) until the folder fits. An entry is removed by renaming it away, then
deleting; maps already open on its files stay valid (POSIX). An array larger than
the whole budget is not cached (the caller reads it from the bucket).
:meth:`S3Cache.prune` removes a store's entries whose video is no longer published
as fetched (withdrawn, purged or republished): run before training, so a purge on
the bucket reaches the caches of the hosts that train from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from store.arrays import ArrayMeta, chunk_key, layout_of, open_array
from store.backend import VideoRef
from store.errors import ConfigError, CorruptError, NotFoundError
from store.s3_objects import Bucket

ENTRIES, TMP, ENTRY_FILE = "entries", "tmp", "entry.json"
#: fetches between two scans of the folder (the other processes' fetches count too)
RESCAN_EVERY = 64
#: the default bound of ``bahfs train --s3-cache-mb``
DEFAULT_CACHE_MB = 10240


def default_cache_dir(env: dict[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/bahfs/s3`` (else ``~/.cache/bahfs/s3``): the OS cache folder,
    read where a command starts."""
    env = dict(os.environ) if env is None else env
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bahfs" / "s3"


@dataclass
class CacheStats:
    """What this cache object did in this process (not shared with forked workers)."""

    hits: int = 0  # arrays opened from the folder
    fetched: int = 0  # arrays fetched from the bucket (one GET of the chunk each)
    fetched_bytes: int = 0
    evicted: int = 0  # entries removed to stay under the budget
    pruned: int = 0  # entries removed by prune()


@dataclass
class S3Cache:
    """A folder of fetched arrays, at most ``budget`` bytes (approximately: see the
    module's docstring)."""

    root: Path
    budget: int
    stats: CacheStats = field(default_factory=CacheStats, compare=False)
    _used: int | None = field(default=None, repr=False, compare=False)
    _since_scan: int = field(default=0, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if self.budget <= 0:
            raise ConfigError(f"cache budget {self.budget} bytes",
                              expected="more than 0 (no cache: pass none)")

    def __getstate__(self) -> dict[str, Any]:  # into another process: the settings only
        return {"root": self.root, "budget": self.budget}

    def __setstate__(self, state: dict[str, Any]) -> None:
        S3Cache.__init__(self, state["root"], state["budget"])

    # -- where -------------------------------------------------------------------------
    def _dirs(self) -> tuple[Path, Path]:
        entries, tmp = self.root / ENTRIES, self.root / TMP
        for d in (self.root, entries, tmp):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        return entries, tmp

    @staticmethod
    def entry_key(endpoint: str | None, location: str, ref: VideoRef, etag: str) -> str:
        """The entry's folder name: a digest of where the video is and which version."""
        text = "\n".join([endpoint or "", location, ref.feature_set, ref.participant_id,
                          ref.video_id, etag])
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    # -- reads -------------------------------------------------------------------------
    def open(self, bucket: Bucket, key: str, ref: VideoRef, name: str, etag: str
             ) -> tuple[ArrayMeta, Any] | None:
        """(metadata, memory-mapped rows) of array ``name`` of the video at ``key`` in
        ``bucket``, whose group has ETag ``etag``: from the folder, else fetched into
        it. None when the array is not the writer's layout or is over the budget (the
        caller reads it from the bucket)."""
        entries, _ = self._dirs()
        entry = entries / self.entry_key(bucket.config.endpoint_url, str(bucket.address),
                                         ref, etag)
        array_key = f"{key}/{name}"
        got = self._local(entry / name, ref.video_id, array_key)
        if got is not None:
            self.stats.hits += 1
            os.utime(entry)  # recently used
            return got
        if not self._fetch(bucket, array_key, entry, name, ref, etag):
            return None
        return self._local(entry / name, ref.video_id, array_key)

    @staticmethod
    def _local(folder: Path, video_id: str, array_key: str
               ) -> tuple[ArrayMeta, Any] | None:
        """The array in ``folder`` through the local fast path; None when absent (never
        fetched, or evicted meanwhile). Its metadata names the bucket key."""
        if not (folder / "zarr.json").is_file():
            return None
        try:
            meta, data = open_array(folder, video_id)
        except FileNotFoundError:  # evicted between two steps
            return None
        if meta.raw_chunk is None:  # its chunk evicted: never read as fill values
            return None
        return replace(meta, path=PurePosixPath(array_key)), data

    def _fetch(self, bucket: Bucket, array_key: str, entry: Path, name: str,
               ref: VideoRef, etag: str) -> bool:
        """Fetch one array into ``entry/name`` (whole, then one rename); whether it is
        there now."""
        raw_meta = bucket.get(f"{array_key}/zarr.json")
        try:
            dtype, shape, raw = layout_of(json.loads(raw_meta))
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptError(f"unreadable Zarr metadata: {exc}",
                               path=f"{array_key}/zarr.json") from exc
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if not raw or size + len(raw_meta) > self.budget:
            return False
        _, tmp = self._dirs()
        work = tmp / uuid.uuid4().hex
        chunk = work / chunk_key(shape)
        chunk.parent.mkdir(mode=0o700, parents=True)
        try:
            try:
                got = bucket.download(f"{array_key}/{chunk_key(shape)}", chunk)
            except NotFoundError:
                return False  # no chunk object: all fill value, read from the bucket
            if got != size:
                raise CorruptError("chunk object size does not match its metadata",
                                   path=f"{array_key}/{chunk_key(shape)}",
                                   video=ref.video_id, expected=f"{size} bytes")
            (work / "zarr.json").write_bytes(raw_meta)
            added = size + len(raw_meta) + self._publish(work, entry, name, ref, etag,
                                                         str(bucket.address))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.stats.fetched += 1
        self.stats.fetched_bytes += size
        self._account(added)
        return True

    @staticmethod
    def _publish(work: Path, entry: Path, name: str, ref: VideoRef, etag: str,
                 location: str) -> int:
        """Move the fetched array ``work`` to ``entry/name`` in one rename (another
        process that got there first wins: ours is dropped by the caller); the bytes of
        the entry's record when this wrote it."""
        entry.mkdir(mode=0o700, exist_ok=True)
        record, written = entry / ENTRY_FILE, 0
        if not record.is_file():
            note = work.with_suffix(".json")
            written = note.write_text(json.dumps({
                "store": location, "feature_set": ref.feature_set,
                "participant_id": ref.participant_id, "video_id": ref.video_id,
                "etag": etag}))
            os.replace(note, record)
        try:
            os.rename(work, entry / name)
        except OSError:
            if not (entry / name / "zarr.json").is_file():
                raise
        return written

    # -- the bound -----------------------------------------------------------------------
    def _account(self, added: int) -> None:
        self._since_scan += 1
        if self._used is None:
            self._used = self.size()
        else:
            self._used += added
        if self._used > self.budget or self._since_scan >= RESCAN_EVERY:
            self._since_scan = 0
            self._used = self._evict()

    def _sized_entries(self) -> list[tuple[float, int, Path]]:
        entries, _ = self._dirs()
        found = []
        for entry in entries.iterdir():
            try:
                mtime = entry.stat().st_mtime
                size = sum(p.stat().st_size for p in entry.rglob("*") if p.is_file())
            except FileNotFoundError:  # removed by another process meanwhile
                continue
            found.append((mtime, size, entry))
        return sorted(found)

    def size(self) -> int:
        """Bytes the folder holds now."""
        return sum(size for _, size, _ in self._sized_entries())

    def _evict(self) -> int:
        """Remove least recently used entries until the folder fits; its size after."""
        found = self._sized_entries()
        used = sum(size for _, size, _ in found)
        for _, size, entry in found:
            if used <= self.budget:
                break
            self._remove(entry)
            self.stats.evicted += 1
            used -= size
        return used

    def _remove(self, entry: Path) -> None:
        _, tmp = self._dirs()
        gone = tmp / f"gone-{uuid.uuid4().hex}"
        try:
            os.rename(entry, gone)
        except FileNotFoundError:
            return
        shutil.rmtree(gone, ignore_errors=True)

    def prune(self, location: str, published: Callable[[VideoRef], str | None]) -> int:
        """Remove the entries of the store at ``location`` whose video's group ETag is
        no longer the one fetched (``published(ref)``: its ETag now, None when not
        published); how many."""
        entries, _ = self._dirs()
        removed = 0
        for entry in sorted(entries.iterdir()):
            try:
                rec = json.loads((entry / ENTRY_FILE).read_text())
                ref = VideoRef(rec["feature_set"], rec["participant_id"], rec["video_id"])
            except (FileNotFoundError, ValueError, KeyError):
                continue  # a fetch still writing it (else left for eviction)
            if rec.get("store") == location and published(ref) != rec.get("etag"):
                self._remove(entry)
                removed += 1
        self._clean_tmp()
        self.stats.pruned += removed
        self._used = None
        return removed

    def _clean_tmp(self, older_than_s: float = 3600.0) -> None:
        """Remove what fetches that died left in ``tmp/`` (older than an hour)."""
        _, tmp = self._dirs()
        now = time.time()
        for left in tmp.iterdir():
            try:
                if now - left.stat().st_mtime > older_than_s:
                    shutil.rmtree(left, ignore_errors=True)
            except FileNotFoundError:
                continue
