"""Reading arrays from a bucket: a raw chunk by byte ranges, anything else through
zarr-python.

An array in the writer's layout (one uncompressed little-endian chunk,
:func:`store.arrays.layout_of`) is read as :class:`RangedArray`: rows ``[a, b)`` are
one ranged GET of exactly their bytes, nothing kept (a store given a local cache,
:mod:`store.s3_cache`, reads such arrays from it instead). Any other array (compressed,
chunked differently, written by another tool) is copied once into memory and opened
with zarr-python (:func:`open_foreign`): such arrays are small and rare in a store.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

import numpy as np
import zarr

from store.arrays import ArrayMeta, chunk_key, layout_of
from store.errors import CorruptError, NotFoundError
from store.s3_objects import Bucket


class RangedArray:
    """The rows of one raw chunk object, sliced by ranged GETs (``data[a:b]``)."""

    def __init__(self, bucket: Bucket, key: str, meta: ArrayMeta) -> None:
        self.bucket, self.key, self.meta = bucket, key, meta
        self.shape, self.dtype = meta.shape, meta.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: slice) -> np.ndarray:
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise TypeError("RangedArray reads row slices data[a:b]")
        start, stop, _ = rows.indices(self.shape[0])
        stop = max(start, stop)
        if stop == start:
            return np.empty((0, *self.shape[1:]), dtype=self.dtype)
        step = self.meta.row_bytes
        body = self.bucket.get_range(self.key, start * step, stop * step)
        return np.frombuffer(body, dtype=self.dtype).reshape(stop - start, *self.shape[1:])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)


def open_foreign(bucket: Bucket, key: str) -> Any:
    """The array at ``key`` through zarr-python, its objects copied into memory."""
    mem: dict[str, Any] = {}
    store = zarr.storage.MemoryStore(mem)
    proto = zarr.core.buffer.default_buffer_prototype()
    for obj, _ in bucket.listing(f"{key}/"):
        mem[obj[len(key) + 1:]] = proto.buffer.from_bytes(bucket.get(obj))
    return zarr.open_array(store, mode="r")


def array_meta(bucket: Bucket, key: str) -> ArrayMeta:
    """Shape, dtype and layout of the array at ``key`` (its ``zarr.json``, and for the
    writer's layout a HEAD of its chunk: ``raw_size``, or ``absent_chunk``)."""
    try:
        meta = json.loads(bucket.get(f"{key}/zarr.json"))
    except NotFoundError as exc:
        raise NotFoundError("array not found", path=key) from exc
    except ValueError as exc:
        raise CorruptError(f"unreadable Zarr metadata: {exc}", path=f"{key}/zarr.json") from exc
    dtype, shape, raw = layout_of(meta)
    if not raw:
        return ArrayMeta(PurePosixPath(key), dtype, shape, None)
    head = bucket.head(f"{key}/{chunk_key(shape)}")
    if head is None:
        return ArrayMeta(PurePosixPath(key), dtype, shape, None, absent_chunk=True)
    return ArrayMeta(PurePosixPath(key), dtype, shape, None, raw_size=head["size"])


def open_stored(bucket: Bucket, meta: ArrayMeta, video_id: str) -> tuple[ArrayMeta, Any]:
    """(``meta``, readable array) read from the bucket: a raw chunk by ranged GETs, any
    other array through zarr-python."""
    if meta.raw_size is None:
        return meta, open_foreign(bucket, str(meta.path))
    size = meta.shape[0] * meta.row_bytes
    if meta.raw_size != size:
        raise CorruptError("chunk object size does not match its metadata",
                           path=meta.path, video=video_id, expected=f"{size} bytes")
    return meta, RangedArray(bucket, f"{meta.path}/{chunk_key(meta.shape)}", meta)
