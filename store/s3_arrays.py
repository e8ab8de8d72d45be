"""Reading arrays from a bucket: a raw chunk by byte ranges, anything else through
zarr-python.

An array in the writer's layout (one uncompressed little-endian chunk,
:func:`store.arrays.layout_of`) is read as :class:`RangedArray`: rows ``[a, b)`` are
one ranged GET of exactly their bytes, nothing cached. Any other array (compressed,
chunked differently, written by another tool) is copied once into memory and opened
with zarr-python (:func:`open_foreign`): such arrays are small and rare in a store.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import zarr

from store.arrays import ArrayMeta
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
