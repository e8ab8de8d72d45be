"""Copying a store between a local folder and a bucket, either way (``bahfs copy``).

Every object of the source is copied but what is private to running writers
(``.staging/``, ``.trash/``, ``.locks/``); each video's group ``zarr.json``, which
publishes it, is copied after every other object: a reader of the destination during
the copy sees whole videos or none. The destination must be a new store: a missing
or empty folder, or a bucket prefix holding no store. A local destination is given
its access policy (the source's ``access.json`` when it has one, else the default).
Both sides are then verified (:func:`store.verify.verify_store`).

The input videos a bucket store holds (``sources/``, :mod:`store.s3_sources`) go
with it to another bucket; a folder store keeps none (its workers read the release),
so bucket to folder leaves them out, and folder to bucket uploads each video of the
videos table whose recorded file this host can read (the others are read from their
recorded path by workers that can see it, until ingest runs again against the bucket).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from store.access import load_policy
from store.backend import Store
from store.errors import StoreError
from store.ingest import upload_sources
from store.layout import SOURCES
from store.local import LocalStore, open_store
from store.location import store_to_write
from store.s3 import S3Store
from store.s3_objects import is_s3
from store.verify import Problem, verify_store

#: what running writers keep to themselves: never copied
PRIVATE = (".staging/", ".trash/", ".locks/")
_BATCH = 64


@dataclass(frozen=True)
class CopyReport:
    objects: int
    bytes: int
    source_problems: list[Problem]
    dest_problems: list[Problem]


def _publishes(key: str) -> bool:
    """Whether ``key`` is a video's group metadata (its publication)."""
    parts = key.split("/")
    return len(parts) == 5 and parts[0] == "features.zarr" and parts[4] == "zarr.json"


def _destination(location: str | Path) -> Store:
    if is_s3(location):
        dst = S3Store.open(location)
        if dst.is_store():
            raise StoreError(f"{dst.location} already holds a store",
                             expected="a bucket prefix holding no store")
        return dst
    path = Path(location)
    if path.exists() and any(path.iterdir()):
        raise StoreError(f"{path} is not empty", expected="a missing or empty folder")
    return LocalStore(store_to_write(path))


def _put(dst: Store, items: list[tuple[str, bytes]]) -> None:
    if isinstance(dst, S3Store):
        dst.bucket.put_many(items)
        return
    root = dst.root if isinstance(dst, LocalStore) else Path(dst.location)
    policy = load_policy(root)
    for key, data in items:
        path = root / key
        policy.make_dirs(path.parent)
        path.write_bytes(data)
        policy.apply(path, is_dir=False)


def copy_store(src_location: str | Path, dst_location: str | Path) -> CopyReport:
    """Copy the store at ``src_location`` to the new store ``dst_location``, then
    verify both."""
    src = open_store(src_location)
    dst = _destination(dst_location)
    skip = PRIVATE + ((f"{SOURCES}/",) if isinstance(dst, LocalStore) else ())
    keys = [k for k in src.keys() if not k.startswith(skip)]
    ordered = ([k for k in keys if k == "access.json"]
               + [k for k in keys if k != "access.json" and not _publishes(k)]
               + [k for k in keys if _publishes(k)])  # videos published last
    size = 0
    for i in range(0, len(ordered), _BATCH):
        items = [(k, src.read_key(k)) for k in ordered[i:i + _BATCH]]
        size += sum(len(v) for _, v in items)
        _put(dst, items)
    if isinstance(dst, LocalStore):
        load_policy(dst.root).apply_tree(dst.root)
    elif isinstance(src, LocalStore) and src.table_exists("videos"):
        videos = src.read_table("videos")
        readable = [bool(s and p) and (Path(s) / p).is_file()
                    for s, p in videos.select("source", "path").iter_rows()]
        upload_sources(dst, videos.filter(pl.Series(readable, dtype=pl.Boolean)))
    return CopyReport(len(ordered), size, verify_store(src), verify_store(dst))
