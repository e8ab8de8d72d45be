"""The store on a local (or shared POSIX) filesystem: the first :class:`Store` backend.

The layout is spelled in :mod:`store.layout`; this module is the one place that
lists a store's feature sets, participants and videos from folders. A video is
built in a private staging folder, synced to disk (every file, then its folders),
then renamed into ``features.zarr/<feature set>/<participant>/<video>`` and the
rename synced: readers see all of it or nothing, and after a power loss a published
video has all its chunks. A crash leaves only a staging folder, which no reader
looks at and which the next writer removes.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Hashable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from store import tables
from store.access import AccessPolicy, drifting, load_policy
from store.arrays import ArrayMeta, array_meta, open_array
from store.backend import Outcome, Store, VideoRef
from store.errors import CorruptError, NotFoundError, StoreError
from store.fault_points import fault_point
from store.features import FeatureSetSpec
from store.layout import (
    LAYOUT_VERSION,
    STAGING,
    atomic_write_text,
    check_name,
    clean_stale_staging,
    ensure_group,
    features_root,
    read_attrs,
    remove_tree,
    staging_dir,
    sync_dir,
    sync_tree,
    video_dir,
)
from store.location import existing_store
from store.locks import LOCKS, store_lock, video_lock, video_lock_name
from store.s3_objects import is_s3

if TYPE_CHECKING:
    from store.s3_cache import S3Cache


def _dirs(path: Path) -> list[Path]:
    return sorted(d for d in path.iterdir() if d.is_dir()) if path.is_dir() else []


class LocalStore(Store):
    """A store in the folder ``root``."""

    def __init__(self, root: Path | str) -> None:
        super().__init__()
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalStore) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    def __getstate__(self) -> dict[str, Any]:  # pickled into workers: the root only
        return {"root": self.root}

    def __setstate__(self, state: dict[str, Any]) -> None:
        Store.__init__(self)  # a fresh table cache in the new process
        self.root = Path(state["root"])

    @property
    def location(self) -> str:
        return str(self.root)

    @property
    def access(self) -> AccessPolicy:
        return load_policy(self.root)

    def keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*")
                      if p.is_file())

    def read_key(self, key: str) -> bytes:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StoreError(f"key {key!r} leaves the store", expected="a key of keys()")
        return path.read_bytes()

    # -- tables ----------------------------------------------------------------------
    def read_table(self, name: str) -> pl.DataFrame:
        return tables.read_table(self.root, name)

    def write_table(self, name: str, df: pl.DataFrame) -> None:
        tables.write_table(self.root, name, df)

    def read_manifest(self) -> dict[str, Any]:
        return tables.read_manifest(self.root)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        tables.write_manifest(self.root, manifest)

    def scan_table(self, name: str) -> pl.LazyFrame:
        return tables.scan_table(self.root, name)

    def table_exists(self, name: str) -> bool:
        return tables.table_exists(self.root, name)

    def table_version(self, name: str) -> Hashable | None:
        try:  # an atomic replace gives the file a new inode
            st = (tables.tables_dir(self.root) / f"{name}.parquet").stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def read_columns(self, name: str, columns: list[str]) -> dict[str, list[Any]]:
        import pyarrow.parquet as pq  # pyarrow, not polars: no thread pool (fork-safe)

        t = pq.read_table(tables.table_path(self.root, name), columns=columns,
                          use_threads=False)
        return {c: t.column(c).to_pylist() for c in columns}

    # -- feature sets ----------------------------------------------------------------
    def has_features(self) -> bool:
        return features_root(self.root).is_dir()

    def _fs_path(self, fs_id: str) -> Path:
        return features_root(self.root) / check_name("feature set", fs_id)

    def feature_set_ids(self) -> list[str]:
        return [d.name for d in _dirs(features_root(self.root))
                if (d / "zarr.json").is_file()]

    def feature_set_folders(self) -> list[str]:
        return [d.name for d in _dirs(features_root(self.root))]

    def feature_set_attrs(self, fs_id: str) -> dict[str, Any]:
        return read_attrs(self._fs_path(fs_id))

    def write_feature_set_attrs(self, fs_id: str, attrs: dict[str, Any]) -> None:
        meta_file = self._fs_path(fs_id) / "zarr.json"
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        meta["attributes"] = attrs
        atomic_write_text(meta_file, json.dumps(meta, indent=2), access=self.access)

    def ensure_feature_set(self, spec: FeatureSetSpec) -> None:
        path = self._fs_path(spec.id)
        if (path / "zarr.json").exists():
            if FeatureSetSpec.from_attrs(read_attrs(path)).id != spec.id:
                raise CorruptError("feature set metadata does not match its id", path=path,
                                   expected=f"provenance of {spec.id}")
            return
        ensure_group(path, {**spec.to_attrs(), "created": tables.utc_now()},
                     access=self.access)

    def rename_feature_set(self, old: str, new: str) -> None:
        target = self._fs_path(new)
        os.rename(self._fs_path(old), target)
        sync_dir(target.parent)

    def merge_feature_set(self, src: str, dst: str) -> None:
        access = self.access
        for ref in self.videos(src):
            there = video_dir(self.root, dst, ref.participant_id, ref.video_id)
            if (there / "zarr.json").is_file():
                continue  # the same numbers, already there
            ensure_group(there.parent, {"participant_id": ref.participant_id}, access=access)
            os.rename(self._video_path(ref), there)
            sync_dir(there.parent)
        remove_tree(self.root, self._fs_path(src))

    # -- participants and videos -----------------------------------------------------
    def _video_path(self, ref: VideoRef) -> Path:
        return video_dir(self.root, ref.feature_set, ref.participant_id, ref.video_id)

    def participants(self, fs_id: str) -> list[str]:
        return [d.name for d in _dirs(self._fs_path(fs_id))]

    def video_entries(self, fs_id: str, participant_id: str) -> list[VideoRef]:
        pdir = self._fs_path(fs_id) / check_name("participant", participant_id)
        return [VideoRef(fs_id, participant_id, d.name) for d in _dirs(pdir)]

    def is_published(self, ref: VideoRef) -> bool:
        return (self._video_path(ref) / "zarr.json").is_file()

    def video_attrs(self, ref: VideoRef) -> dict[str, Any]:
        return read_attrs(self._video_path(ref))

    def prepare_writes(self) -> None:
        ensure_group(features_root(self.root), {"bahfs_layout": LAYOUT_VERSION},
                     access=self.access)
        self.clean_staging()

    @contextmanager
    def _staging(self) -> Iterator[Path]:
        stage = staging_dir(self.root, self.access)
        try:
            yield stage
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def staging(self) -> AbstractContextManager[Path]:
        return self._staging()

    def commit(self, staged: Path, ref: VideoRef, *, overwrite: bool = False) -> Outcome:
        final = self._video_path(ref)
        if final.exists() and not overwrite:
            return "skipped"
        access = self.access
        ensure_group(final.parent, {"participant_id": ref.participant_id}, access=access)
        fault_point("staged")  # crash tests (store.fault_points): off unless asked for
        access.apply_tree(staged)  # zarr wrote with the umask's modes
        sync_tree(staged)  # the data is on disk before the rename publishes it
        outcome: Outcome = "written"
        if final.exists():  # overwrite: move the old one out of sight first
            remove_tree(self.root, final)
            outcome = "overwritten"
        fault_point("rename")
        try:
            os.rename(staged, final)
        except OSError as exc:  # another writer published it in between
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                return "skipped"
            raise
        sync_dir(final.parent)  # and the rename itself
        fault_point("published")
        return outcome

    def unpublish(self, ref: VideoRef) -> None:
        remove_tree(self.root, self._video_path(ref))
        pdir = self._video_path(ref).parent
        if pdir.is_dir() and not any(self.is_published(v) for v in
                                     self.video_entries(ref.feature_set, ref.participant_id)):
            remove_tree(self.root, pdir)

    def remove_participant(self, participant_id: str) -> int:
        check_name("participant", participant_id)
        removed = 0
        for fs in self.feature_set_folders():
            pdir = self._fs_path(fs) / participant_id
            if pdir.is_dir():
                removed += sum(map(self.is_published, self.video_entries(fs, participant_id)))
                remove_tree(self.root, pdir)
        return removed

    # -- arrays ----------------------------------------------------------------------
    def put_source(self, participant_id: str, video_id: str, file: Path) -> bool:
        return False  # workers read the release where ingest found it

    def source_file(self, participant_id: str, video_id: str, recorded: Path
                    ) -> AbstractContextManager[Path]:
        return nullcontext(recorded)

    def array_meta(self, ref: VideoRef, name: str) -> ArrayMeta:
        return array_meta(self._video_path(ref) / name)

    def open_array(self, ref: VideoRef, name: str) -> tuple[ArrayMeta, Any]:
        if not self.is_published(ref):
            raise NotFoundError(f"video {ref.video_id!r} has no features in "
                                f"{ref.feature_set!r}", video=ref.video_id,
                                participant=ref.participant_id,
                                expected="a video extracted into this feature set")
        return open_array(self._video_path(ref) / name, ref.video_id)

    # -- locks, staging, access ------------------------------------------------------
    def lock(self, timeout_s: float = 600.0) -> AbstractContextManager[None]:
        return store_lock(self.root, timeout_s)

    def video_lock(self, video_id: str) -> AbstractContextManager[bool]:
        return video_lock(self.root, video_id)

    def remove_video_lock(self, video_id: str) -> bool:
        lock = self.root / LOCKS / video_lock_name(video_id)
        if not lock.is_file():
            return False
        lock.unlink(missing_ok=True)
        return True

    def staging_entries(self) -> list[str]:
        folder = self.root / STAGING
        return sorted(d.name for d in folder.iterdir()) if folder.is_dir() else []

    def clean_staging(self) -> list[str]:
        return [d.name for d in clean_stale_staging(self.root)]

    def access_drift(self) -> list[tuple[str, str]]:
        """Paths (relative, ``.`` for the root) whose mode or group differ from the
        store's access policy, with what differs."""
        if not self.root.is_dir():
            return []
        return [(str(p.relative_to(self.root)) if p != self.root else ".", what)
                for p, what in drifting(self.root)]


def as_store(store: Store | Path | str, cache: S3Cache | None = None) -> Store:
    """``store`` itself, the store in a bucket at ``s3://bucket/prefix``
    (:class:`store.s3.S3Store`, configured here from the AWS settings, reading arrays
    through ``cache`` when given), or the local store at a path: converted once, at a
    boundary."""
    if isinstance(store, Store):
        return store
    if is_s3(store):
        from store.s3 import S3Store

        return S3Store.open(store, cache)
    return LocalStore(Path(store))


def open_store(path: Path | str, cache: S3Cache | None = None) -> Store:
    """The store at ``path`` (a folder or ``s3://bucket/prefix``, read through
    ``cache`` when given); refused when it is not a store (store.location)."""
    if is_s3(path):
        from store.s3 import S3Store

        st = S3Store.open(path, cache)
        if not st.is_store():
            raise NotFoundError(f"no store at {st.location}",
                                expected="a store made by `bahfs ingest` or `bahfs copy`")
        return st
    return LocalStore(existing_store(Path(path)))


def bucket_to_write(location: str) -> Store:
    """The store at ``s3://bucket/prefix`` when ``ingest`` or ``extract`` may write it:
    the prefix of an existing bucket holding a store or nothing; else a StoreError."""
    from store.s3 import S3Store

    st = S3Store.open(location)
    if not st.is_store() and st.bucket.holds_objects():
        raise StoreError(f"{st.location} holds objects but no bahfs store",
                         expected="a store, or an empty prefix of an existing bucket")
    return st
