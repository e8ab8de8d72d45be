"""The store as one object: the interface every backend implements.

A :class:`Store` owns a store's layout (``docs/store.md``): its Parquet tables, its
feature sets, the participants and videos published in each, their arrays, the
locks, the staging area and the access policy. No other module lists the store's
feature sets, participants or videos from folders: they ask this object (tables
too, in the modules moved over; :mod:`store.tables` on a path serves the rest), so
a backend on another medium (object storage) is one more subclass. The local filesystem backend is
:class:`store.local.LocalStore`; ``tests/store/test_contract.py`` is the suite
every backend passes.

The shape follows ``zarr.abc.store.Store``: a small set of abstract primitives
(list, get, set, delete, an atomic commit) with the conveniences built on them here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl

from store.access import AccessPolicy
from store.arrays import ArrayMeta
from store.features import FeatureSetSpec
from store.schema import empty

#: what publishing a video did
Outcome = Literal["written", "skipped", "overwritten"]


@dataclass(frozen=True, order=True)
class VideoRef:
    """Where one video's group sits: feature set, participant, video."""

    feature_set: str
    participant_id: str
    video_id: str


class Store(ABC):
    """A bahfs store: tables, feature sets, videos, arrays, locks, staging, access."""

    def __init__(self) -> None:
        self._tables: dict[str, tuple[Hashable, pl.DataFrame]] = {}

    # -- where -----------------------------------------------------------------------
    @property
    @abstractmethod
    def location(self) -> str:
        """The store's address, as errors and logs name it."""

    @property
    @abstractmethod
    def access(self) -> AccessPolicy:
        """Who may read what this store holds (:mod:`store.access`)."""

    @abstractmethod
    def keys(self) -> list[str]:
        """Every object the store holds, as a key relative to it
        (``tables/videos.parquet``), sorted."""

    @abstractmethod
    def read_key(self, key: str) -> bytes:
        """The bytes of the object at ``key``."""

    # -- tables ----------------------------------------------------------------------
    @abstractmethod
    def read_table(self, name: str) -> pl.DataFrame:
        """Table ``name`` with its declared schema; NotFoundError when never written."""

    @abstractmethod
    def write_table(self, name: str, df: pl.DataFrame) -> None:
        """Conform ``df`` to the schema of ``name`` and replace the table atomically."""

    @abstractmethod
    def table_exists(self, name: str) -> bool:
        """Whether table ``name`` was ever written."""

    @abstractmethod
    def table_version(self, name: str) -> Hashable | None:
        """A value that changes whenever table ``name`` is replaced (None: absent)."""

    @abstractmethod
    def read_columns(self, name: str, columns: list[str]) -> dict[str, list[Any]]:
        """Columns of table ``name`` as Python lists, read on this thread only (safe in
        a process forked after polars or pyarrow started threads: DataLoader workers)."""

    def read_table_or_empty(self, name: str) -> pl.DataFrame:
        """Table ``name``, or an empty frame of its schema when never written."""
        return self.read_table(name) if self.table_exists(name) else empty(name)

    @abstractmethod
    def read_manifest(self) -> dict[str, Any]:
        """What ingest recorded about the store's source (NotFoundError: never ingested)."""

    @abstractmethod
    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Replace the ingest manifest atomically."""

    @abstractmethod
    def scan_table(self, name: str) -> pl.LazyFrame:
        """A lazy scan of table ``name`` (large tables: frame_labels)."""

    def table(self, name: str) -> pl.DataFrame:
        """Table ``name`` as :meth:`read_table` gives it, read once per version: the
        cached frame is reused until the table is replaced, by this object or any
        other writer."""
        version = self.table_version(name)
        cached = self._tables.get(name)
        if cached is not None and cached[0] == version:
            return cached[1]
        df = self.read_table(name)
        # the version seen before reading: a replace during the read re-reads next time
        self._tables[name] = (version, df)
        return df

    # -- feature sets ----------------------------------------------------------------
    @abstractmethod
    def has_features(self) -> bool:
        """Whether the features root exists (a writer has opened the store)."""

    @abstractmethod
    def feature_set_ids(self) -> list[str]:
        """Every feature set with metadata, sorted."""

    @abstractmethod
    def feature_set_folders(self) -> list[str]:
        """Every feature-set entry, with metadata or not (for verify), sorted."""

    @abstractmethod
    def feature_set_attrs(self, fs_id: str) -> dict[str, Any]:
        """The attributes (provenance) of feature set ``fs_id``."""

    @abstractmethod
    def write_feature_set_attrs(self, fs_id: str, attrs: dict[str, Any]) -> None:
        """Replace the attributes of feature set ``fs_id`` atomically."""

    @abstractmethod
    def ensure_feature_set(self, spec: FeatureSetSpec) -> None:
        """Create the feature set of ``spec`` with its provenance, or check it matches."""

    @abstractmethod
    def rename_feature_set(self, old: str, new: str) -> None:
        """Move feature set ``old`` to the id ``new`` (absent) in one step."""

    @abstractmethod
    def merge_feature_set(self, src: str, dst: str) -> None:
        """Move the videos of ``src`` that ``dst`` lacks into ``dst``; remove ``src``."""

    def spec(self, fs_id: str) -> FeatureSetSpec:
        """The spec of feature set ``fs_id`` (from its provenance)."""
        return FeatureSetSpec.from_attrs(self.feature_set_attrs(fs_id))

    def feature_sets(self) -> dict[str, FeatureSetSpec]:
        """Every feature set's spec, by id."""
        return {fs: self.spec(fs) for fs in self.feature_set_ids()}

    # -- participants and videos -----------------------------------------------------
    @abstractmethod
    def participants(self, fs_id: str) -> list[str]:
        """Participants with an entry in feature set ``fs_id``, sorted."""

    @abstractmethod
    def video_entries(self, fs_id: str, participant_id: str) -> list[VideoRef]:
        """Every video entry of a participant in ``fs_id``, published or not, sorted."""

    @abstractmethod
    def is_published(self, ref: VideoRef) -> bool:
        """Whether the video's group is published."""

    @abstractmethod
    def video_attrs(self, ref: VideoRef) -> dict[str, Any]:
        """The attributes of a video's group (n_frames, written_at, ...)."""

    @abstractmethod
    def prepare_writes(self) -> None:
        """Make the features root, and remove what dead writers left in staging."""

    @abstractmethod
    def staging(self) -> AbstractContextManager[Path]:
        """A private local folder to build one video's group in; removed on exit."""

    @abstractmethod
    def commit(self, staged: Path, ref: VideoRef, *, overwrite: bool = False) -> Outcome:
        """Publish the group built at ``staged`` as ``ref``, atomically: readers see all
        of it or nothing. A video already published is kept (``skipped``) unless
        ``overwrite``."""

    @abstractmethod
    def unpublish(self, ref: VideoRef) -> None:
        """Remove one video; and its participant's entry where none of theirs is left."""

    @abstractmethod
    def remove_participant(self, participant_id: str) -> int:
        """Remove every entry of a participant in every feature set, and the input
        videos the store holds of theirs (:meth:`put_source`); the number of
        published videos removed."""

    def videos(self, fs_id: str) -> list[VideoRef]:
        """The published videos of feature set ``fs_id``, by participant and video."""
        return [v for p in self.participants(fs_id) for v in self.video_entries(fs_id, p)
                if self.is_published(v)]

    def all_videos(self) -> Iterator[VideoRef]:
        """The published videos of every feature set."""
        for fs in self.feature_set_ids():
            yield from self.videos(fs)

    # -- input videos ----------------------------------------------------------------
    @abstractmethod
    def put_source(self, participant_id: str, video_id: str, file: Path) -> bool:
        """Keep the input video ``file`` where every worker of this store can read it
        (a bucket: uploaded, unless an object of the same size is there); whether
        anything was copied. A folder store keeps none: workers read ``file``."""

    @abstractmethod
    def source_file(self, participant_id: str, video_id: str, recorded: Path
                    ) -> AbstractContextManager[Path]:
        """A local path to decode the video from, for the ``with`` block: ``recorded``
        (the path ingest recorded) for a folder store; for a bucket, its uploaded
        copy downloaded into this process's temporary directory and removed on exit."""

    # -- arrays ----------------------------------------------------------------------
    @abstractmethod
    def array_meta(self, ref: VideoRef, name: str) -> ArrayMeta:
        """Shape, dtype and chunk layout of one array of a published video."""

    @abstractmethod
    def open_array(self, ref: VideoRef, name: str) -> tuple[ArrayMeta, Any]:
        """(metadata, sliceable array) of one array of a published video."""

    # -- locks, staging, access ------------------------------------------------------
    @abstractmethod
    def lock(self, timeout_s: float = 600.0) -> AbstractContextManager[None]:
        """Hold the store's table lock (BusyError after ``timeout_s``)."""

    @abstractmethod
    def video_lock(self, video_id: str) -> AbstractContextManager[bool]:
        """Try to claim one video for extraction; yields whether this process holds it."""

    @abstractmethod
    def remove_video_lock(self, video_id: str) -> bool:
        """Remove the lock named after ``video_id`` (it names a withdrawn participant's
        video); whether there was one."""

    @abstractmethod
    def staging_entries(self) -> list[str]:
        """Unfinished writes in the staging area (crashed or still running)."""

    @abstractmethod
    def clean_staging(self) -> list[str]:
        """Remove the staging entries of dead writers; return them."""

    @abstractmethod
    def access_drift(self) -> list[tuple[str, str]]:
        """(path in the store, what differs) for every path whose permissions differ
        from the access policy."""
