"""The store in an S3 bucket (or any S3-compatible server): the second :class:`Store`
backend, ``s3://bucket/prefix``.

The keys are the local store's paths (``tables/videos.parquet``,
``features.zarr/<feature set>/<participant>/<video>/...``), so plain zarr, xarray and
polars read a bucket as they read a folder. The objects of a video are uploaded
first and its group's ``zarr.json`` last, put only where it is absent
(``If-None-Match: *``): that object is the video's publication. A video without it
is invisible to every reader and to every listing here (its objects belong to the
write in flight, or to a crashed one that the next writer removes). Writers of one
video exclude each other by a publish claim (:mod:`store.s3_locks`), so two hosts
never mix the chunks of one video; the table lock and video locks are lock objects
of the same kind. The bucket keeps no history: removing a video, a participant or
a feature set deletes its objects, and what a purge removes is gone (on a bucket
with versioning on, the bucket's lifecycle must expire noncurrent versions:
``docs/store.md``).

The input videos ingest records are uploaded under ``sources/`` for workers that
cannot see the release, and fetched by them to decode (:mod:`store.s3_sources`).

Arrays are read by ranged GETs (:mod:`store.s3_arrays`), or through a local cache
of whole arrays when the store is given one (:mod:`store.s3_cache`).

Staging is a local folder (``staging()``), announced in the bucket under
``.staging/<host>-<pid>-<random>`` for as long as it lives (renewed as a lock is),
so that a writer that died is seen and cleaned (:func:`store.s3_locks.owner_gone`).
Locks, claims and staging entries live ``lease_s`` seconds unless renewed every
``renew_s`` (:mod:`store.s3_lease`). Access to a bucket is the bucket's and IAM's
business: there are no POSIX modes to set or drift.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from store import s3_arrays, s3_locks, s3_sources
from store.access import AccessPolicy
from store.arrays import ArrayMeta
from store.backend import Outcome, Store, VideoRef
from store.errors import CorruptError, NotFoundError, StoreError
from store.fault_points import fault_point
from store.features import FeatureSetSpec
from store.layout import FEATURES, LAYOUT_VERSION, STAGING, check_name
from store.locks import LOCKS, video_lock_name
from store.s3_cache import S3Cache
from store.s3_lease import LEASE_S, RENEW_S, Holding, Lease
from store.s3_objects import Bucket, S3Address, S3Config
from store.s3_tables import S3Tables
from store.tables import utc_now

GROUP = "zarr.json"
#: how long a commit waits for another writer's claim on the same video
CLAIM_WAIT_S = 600.0


def _group(attrs: dict[str, Any]) -> bytes:
    return json.dumps({"zarr_format": 3, "node_type": "group", "attributes": attrs},
                      indent=2).encode()


def _staging_root() -> Path:
    return Path(tempfile.gettempdir()) / "bahfs-s3-staging"


class S3Store(S3Tables, Store):
    """A store under ``s3://bucket/prefix``."""

    def __init__(self, address: S3Address | str, config: S3Config,
                 cache: S3Cache | None = None, *, lease_s: float = LEASE_S,
                 renew_s: float = RENEW_S) -> None:
        super().__init__()
        addr = address if isinstance(address, S3Address) else S3Address.parse(address)
        self.bucket = Bucket(addr, config)
        self.cache = cache  # arrays opened are fetched into it (store.s3_cache)
        self.lease = Lease(lease_s, renew_s)  # of its locks, claims, staging entries

    @classmethod
    def open(cls, location: object, cache: S3Cache | None = None) -> S3Store:
        """The store at ``s3://bucket/prefix``, configured from this process's AWS
        settings (read here, once), reading arrays through ``cache`` when given."""
        return cls(S3Address.parse(location), S3Config.resolve(), cache)

    def __repr__(self) -> str:
        return f"S3Store({self.location!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, S3Store) and other.location == self.location

    def __hash__(self) -> int:
        return hash(self.location)

    def __getstate__(self) -> dict[str, Any]:  # the bucket pickles without credentials
        return {"bucket": self.bucket, "cache": self.cache, "lease": self.lease}

    def __setstate__(self, state: dict[str, Any]) -> None:
        Store.__init__(self)  # a fresh table cache in the new process
        self.bucket, self.cache = state["bucket"], state.get("cache")
        self.lease = state.get("lease", Lease())

    @property
    def location(self) -> str:
        return str(self.bucket.address)

    @property
    def access(self) -> AccessPolicy:
        return AccessPolicy()

    def keys(self) -> list[str]:
        return sorted(k for k, _ in self.bucket.listing(""))

    def read_key(self, key: str) -> bytes:
        if ".." in PurePosixPath(key).parts:
            raise StoreError(f"key {key!r} leaves the store", expected="a key of keys()")
        return self.bucket.get(key)

    def is_store(self) -> bool:
        """Whether the bucket prefix holds a store (store.location's markers)."""
        from store.location import MARKERS

        return any(self.bucket.holds_objects(f"{m}/") or self.bucket.exists(m) for m in MARKERS)

    # -- JSON objects ----------------------------------------------------------------
    def _json(self, key: str) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.bucket.get(key))
        except ValueError as exc:
            raise CorruptError(f"unreadable Zarr metadata: {exc}", path=key) from exc
        return data

    def _attrs(self, prefix: str) -> dict[str, Any]:
        try:
            attrs: dict[str, Any] = self._json(f"{prefix}/{GROUP}")["attributes"]
        except NotFoundError as exc:
            raise NotFoundError("missing Zarr metadata", path=f"{prefix}/{GROUP}") from exc
        except KeyError as exc:
            raise CorruptError("unreadable Zarr metadata", path=f"{prefix}/{GROUP}") from exc
        return attrs

    def _ensure_group(self, prefix: str, attrs: dict[str, Any]) -> None:
        if not self.bucket.exists(f"{prefix}/{GROUP}"):
            self.bucket.put_new(f"{prefix}/{GROUP}", _group(attrs))

    # -- feature sets ----------------------------------------------------------------
    def has_features(self) -> bool:
        return self.bucket.exists(f"{FEATURES}/{GROUP}")

    @staticmethod
    def _fs_key(fs_id: str) -> str:
        return f"{FEATURES}/{check_name('feature set', fs_id)}"

    def feature_set_folders(self) -> list[str]:
        return self.bucket.dirs(f"{FEATURES}/")

    def feature_set_ids(self) -> list[str]:
        return [fs for fs in self.feature_set_folders()
                if self.bucket.exists(f"{self._fs_key(fs)}/{GROUP}")]

    def feature_set_attrs(self, fs_id: str) -> dict[str, Any]:
        return self._attrs(self._fs_key(fs_id))

    def write_feature_set_attrs(self, fs_id: str, attrs: dict[str, Any]) -> None:
        key = f"{self._fs_key(fs_id)}/{GROUP}"
        meta = self._json(key)
        meta["attributes"] = attrs
        self.bucket.put(key, json.dumps(meta, indent=2).encode())

    def ensure_feature_set(self, spec: FeatureSetSpec) -> None:
        prefix = self._fs_key(spec.id)
        if not self.bucket.exists(f"{prefix}/{GROUP}"):
            self._ensure_group(prefix, {**spec.to_attrs(), "created": utc_now()})
        if FeatureSetSpec.from_attrs(self._attrs(prefix)).id != spec.id:
            raise CorruptError("feature set metadata does not match its id", path=prefix,
                               expected=f"provenance of {spec.id}")

    def rename_feature_set(self, old: str, new: str) -> None:
        """No rename on object storage: the new feature set's group first, then each
        video moved as by :meth:`merge_feature_set` (a crash part-way leaves every video
        published under one id or both, and running it again finishes)."""
        meta = self.bucket.get(f"{self._fs_key(old)}/{GROUP}")
        self.bucket.put_new(f"{self._fs_key(new)}/{GROUP}", meta)
        self.merge_feature_set(old, new)

    def merge_feature_set(self, src: str, dst: str) -> None:
        for ref in self.videos(src):
            there = VideoRef(dst, ref.participant_id, ref.video_id)
            if not self.is_published(there):
                self._ensure_group(self._participant_key(dst, ref.participant_id),
                                   {"participant_id": ref.participant_id})
                here, to = self._video_key(ref), self._video_key(there)
                objects = [k for k, _ in self.bucket.listing(f"{here}/")
                           if k != f"{here}/{GROUP}"]
                self.bucket.copy_many([(k, to + k[len(here):]) for k in objects])
                self.bucket.copy(f"{here}/{GROUP}", f"{to}/{GROUP}")  # published last
            self.unpublish(ref)
        self.bucket.delete_prefix(f"{self._fs_key(src)}/")

    # -- participants and videos -----------------------------------------------------
    def _participant_key(self, fs_id: str, participant_id: str) -> str:
        return f"{self._fs_key(fs_id)}/{check_name('participant', participant_id)}"

    def _video_key(self, ref: VideoRef) -> str:
        return (f"{self._participant_key(ref.feature_set, ref.participant_id)}/"
                f"{check_name('video', ref.video_id)}")

    def participants(self, fs_id: str) -> list[str]:
        return self.bucket.dirs(f"{self._fs_key(fs_id)}/")

    def video_entries(self, fs_id: str, participant_id: str) -> list[VideoRef]:
        """The participant's published videos: on object storage a video without its
        group object is no entry but a write in flight (or a dead one's, cleaned)."""
        prefix = f"{self._participant_key(fs_id, participant_id)}/"
        found = {k[len(prefix):].split("/")[0] for k, _ in self.bucket.listing(prefix)
                 if k.count("/") == prefix.count("/") + 1 and k.endswith(f"/{GROUP}")}
        return [VideoRef(fs_id, participant_id, v) for v in sorted(found)]

    def is_published(self, ref: VideoRef) -> bool:
        return self.bucket.exists(f"{self._video_key(ref)}/{GROUP}")

    def video_attrs(self, ref: VideoRef) -> dict[str, Any]:
        return self._attrs(self._video_key(ref))

    def prepare_writes(self) -> None:
        self._ensure_group(FEATURES, {"bahfs_layout": LAYOUT_VERSION})
        self.clean_staging()

    @contextmanager
    def _staging(self) -> Iterator[Path]:
        tag = s3_locks.owner_tag()
        stage = _staging_root() / tag
        stage.mkdir(parents=True, mode=0o700)
        try:
            with s3_locks.announced(self.bucket, f"{STAGING}/{tag}", tag, self.lease):
                yield stage
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    def staging(self) -> AbstractContextManager[Path]:
        return self._staging()

    def _claim_key(self, ref: VideoRef) -> str:
        return f"{LOCKS}/publish/{ref.feature_set}/{ref.participant_id}/{ref.video_id}"

    def commit(self, staged: Path, ref: VideoRef, *, overwrite: bool = False) -> Outcome:
        final = self._video_key(ref)
        if self.is_published(ref) and not overwrite:
            return "skipped"
        self._ensure_group(self._participant_key(ref.feature_set, ref.participant_id),
                           {"participant_id": ref.participant_id})
        with s3_locks.claimed(self.bucket, self._claim_key(ref), final, ref.video_id,
                              CLAIM_WAIT_S, self.lease) as claim:
            return self._publish(staged, ref, claim, overwrite)

    def _publish(self, staged: Path, ref: VideoRef, claim: Holding,
                 overwrite: bool) -> Outcome:
        """Upload and publish under the video's ``claim``: nothing is published, and
        no object written after, once the claim is lost (LeaseLostError)."""
        final = self._video_key(ref)
        if self.is_published(ref) and not overwrite:
            return "skipped"  # another writer published it while this one waited
        fault_point("staged")  # crash tests (store.fault_points): off unless asked for
        claim.check()
        outcome: Outcome = "written"
        if self.is_published(ref):  # overwrite: out of sight first, then replaced
            self.bucket.delete(f"{final}/{GROUP}")
            outcome = "overwritten"
        self.bucket.delete_prefix(f"{final}/")  # the old one's, or a dead writer's
        files = sorted(p for p in staged.rglob("*") if p.is_file())
        self.bucket.put_many([(f"{final}/{p.relative_to(staged).as_posix()}",
                               p.read_bytes()) for p in files if p != staged / GROUP],
                             before=claim.check)
        fault_point("rename")
        claim.confirm()  # the claim is this writer's for a lease more
        if self.bucket.put_new(f"{final}/{GROUP}", (staged / GROUP).read_bytes()) is None:
            return "skipped"
        fault_point("published")
        return outcome

    def unpublish(self, ref: VideoRef) -> None:
        self.bucket.delete(f"{self._video_key(ref)}/{GROUP}")  # out of sight first
        self.bucket.delete_prefix(f"{self._video_key(ref)}/")
        if not self.video_entries(ref.feature_set, ref.participant_id):
            self.bucket.delete_prefix(
                f"{self._participant_key(ref.feature_set, ref.participant_id)}/")

    def remove_participant(self, participant_id: str) -> int:
        check_name("participant", participant_id)
        removed = 0
        for fs in self.feature_set_folders():
            removed += len(self.video_entries(fs, participant_id))
            self.bucket.delete_prefix(f"{self._participant_key(fs, participant_id)}/")
        s3_sources.remove_sources(self.bucket, participant_id)
        return removed

    def put_source(self, participant_id: str, video_id: str, file: Path) -> bool:
        return s3_sources.put_source(self.bucket, participant_id, video_id, file)

    def source_file(self, participant_id: str, video_id: str, recorded: Path
                    ) -> AbstractContextManager[Path]:
        return s3_sources.fetched(self.bucket, participant_id, video_id, recorded)

    # -- arrays ----------------------------------------------------------------------
    def array_meta(self, ref: VideoRef, name: str) -> ArrayMeta:
        return s3_arrays.array_meta(self.bucket, f"{self._video_key(ref)}/{name}")

    def open_array(self, ref: VideoRef, name: str) -> tuple[ArrayMeta, Any]:
        """The array from the cache when this store has one (fetched into it on first
        use), else read from the bucket (:mod:`store.s3_arrays`)."""
        head = self.bucket.head(f"{self._video_key(ref)}/{GROUP}")
        if head is None:
            raise NotFoundError(f"video {ref.video_id!r} has no features in "
                                f"{ref.feature_set!r}", video=ref.video_id,
                                participant=ref.participant_id,
                                expected="a video extracted into this feature set")
        if self.cache is not None:
            got = self.cache.open(self.bucket, self._video_key(ref), ref, name, head["etag"])
            if got is not None:
                return got
        return s3_arrays.open_stored(self.bucket, self.array_meta(ref, name), ref.video_id)

    def prune_cache(self) -> int:
        """Remove from this store's cache the videos no longer published as they were
        fetched (withdrawn, purged, republished); how many (0 without a cache)."""
        if self.cache is None:
            return 0

        def etag(ref: VideoRef) -> str | None:
            head = self.bucket.head(f"{self._video_key(ref)}/{GROUP}")
            return None if head is None else str(head["etag"])

        return self.cache.prune(self.location, etag)

    # -- locks, staging, access ------------------------------------------------------
    def lock(self, timeout_s: float = 600.0) -> AbstractContextManager[None]:
        return s3_locks.held(self.bucket, f"{LOCKS}/tables.lock", timeout_s,
                             "the store's tables", self.lease)

    def video_lock(self, video_id: str) -> AbstractContextManager[bool]:
        return s3_locks.tried(self.bucket, f"{LOCKS}/{video_lock_name(video_id)}",
                              self.lease)

    def remove_video_lock(self, video_id: str) -> bool:
        key = f"{LOCKS}/{video_lock_name(video_id)}"
        if not self.bucket.exists(key):
            return False
        self.bucket.delete(key)
        return True

    def staging_entries(self) -> list[str]:
        return sorted(k.rpartition("/")[2] for k, _ in self.bucket.listing(f"{STAGING}/"))

    def clean_staging(self) -> list[str]:
        """Remove the staging entries of dead writers (and their local folders on this
        host), and the claims they left with the objects of their unpublished video."""
        removed = s3_locks.clean_entries(self.bucket, f"{STAGING}/", self.lease)
        for tag in removed:
            shutil.rmtree(_staging_root() / tag, ignore_errors=True)
        s3_locks.clean_claims(self.bucket, f"{LOCKS}/publish/",
                              lambda target: self.bucket.exists(f"{target}/{GROUP}"),
                              self.lease)
        return removed

    def access_drift(self) -> list[tuple[str, str]]:
        return []
