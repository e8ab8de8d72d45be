"""One stored array: its metadata, and opening it for reads.

The writer (:mod:`store.writer`) stores every array as one uncompressed chunk (raw
little-endian bytes): such an array is memory-mapped once and rows ``[a, b)`` are a
slice (no syscall, no decode). Any other Zarr array (compressed, chunked differently,
written by another tool) is opened through zarr-python. Both give the same values.
A backend without files (object storage, :mod:`store.s3`) reads the same rule from
the same metadata (:func:`layout_of`) and reads a raw chunk by byte ranges.
"""

from __future__ import annotations

import json
import mmap
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import zarr

from store.errors import CorruptError, NotFoundError
from store.layout import refuse_zarr_v2


@dataclass(frozen=True)
class ArrayMeta:
    path: PurePath  # the array's folder (local) or key (object storage)
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    raw_chunk: Path | None  # set when the fast path applies
    absent_chunk: bool = False  # the writer's layout, chunk file absent: all fill value
    raw_size: int | None = None  # object storage: the raw chunk object's size in bytes

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize


def layout_of(meta: dict[str, Any]) -> tuple[np.dtype[Any], tuple[int, ...], bool]:
    """(dtype, shape, whether the array is one uncompressed little-endian chunk: the
    writer's layout) from an array's ``zarr.json``: the one place that rule is decided."""
    shape = tuple(int(s) for s in meta["shape"])
    dtype = np.dtype(meta["data_type"]).newbyteorder("<")
    chunk = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
    codecs = meta.get("codecs", [])
    raw = (chunk == shape and len(codecs) == 1 and codecs[0]["name"] == "bytes"
           and codecs[0].get("configuration", {}).get("endian", "little") == "little"
           and meta["chunk_key_encoding"]["name"] == "default"
           and meta["chunk_key_encoding"].get("configuration", {}).get("separator", "/") == "/")
    return dtype, shape, raw


def chunk_key(shape: tuple[int, ...]) -> str:
    """The key of the one chunk of an array of ``shape``, relative to the array."""
    return "/".join(["c", *(["0"] * len(shape))])


def array_meta(path: Path) -> ArrayMeta:
    """Shape, dtype and, for a single uncompressed little-endian chunk (the layout the
    writer makes, :func:`layout_of`), the chunk file. A chunk file
    that is absent means the fill value (Zarr's rule): such arrays are read through
    zarr-python."""
    try:
        meta = json.loads((path / "zarr.json").read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        refuse_zarr_v2(path)
        raise NotFoundError("array not found", path=path) from exc
    dtype, shape, raw = layout_of(meta)
    chunk_file = path / chunk_key(shape) if raw else None
    if chunk_file is not None and not chunk_file.is_file():
        return ArrayMeta(path, dtype, shape, None, absent_chunk=True)
    return ArrayMeta(path, dtype, shape, chunk_file)


def open_array(path: Path, video_id: str) -> tuple[ArrayMeta, Any]:
    """(metadata, readable array) of the array at ``path``: a raw chunk memory-mapped
    with MAP_POPULATE (pages pre-faulted, so window reads never fault), any other
    array a zarr-python handle."""
    meta = array_meta(path)
    if meta.raw_chunk is None:
        return meta, zarr.open_array(str(path), mode="r")
    size = meta.shape[0] * meta.row_bytes
    if meta.raw_chunk.stat().st_size != size:
        raise CorruptError("chunk file size does not match its metadata",
                           path=meta.raw_chunk, video=video_id, expected=f"{size} bytes")
    with open(meta.raw_chunk, "rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ,
                       flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))
    return meta, np.frombuffer(mm, dtype=meta.dtype).reshape(meta.shape)
