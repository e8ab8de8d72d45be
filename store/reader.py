"""Reading features: a video, a frame range, or a batch of random multimodal windows.

Opened lazily and fork-aware: caches are dropped when the process id changes, so
one reader can be handed to torch DataLoader workers and each opens its own files.

Fast path: an array written by :mod:`store.writer` is one uncompressed chunk
(raw little-endian bytes), so it is memory-mapped once and rows ``[a, b)`` are a
slice copied straight into the batch (no syscall, no decode). Any other Zarr
array (compressed, chunked differently, written by another tool) is read through
zarr-python. Both return the same values.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from store.errors import CorruptError, NotFoundError, StoreError
from store.features import FeatureSetSpec
from store.layout import (
    features_root,
    published_videos,
    read_attrs,
    refuse_zarr_v2,
    video_dir,
)
from store.tables import table_path


def _fd_budget() -> int:
    """Open chunk files kept at once: half the process's descriptor limit, at most 8192."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(64, min(8192, soft // 2))


_MAX_FDS = _fd_budget()  # each map holds a file descriptor


@dataclass(frozen=True)
class ArrayMeta:
    path: Path
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    raw_chunk: Path | None  # set when the fast path applies
    absent_chunk: bool = False  # the writer's layout, chunk file absent: all fill value

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize


def array_meta(path: Path) -> ArrayMeta:
    """Shape, dtype and, for a single uncompressed little-endian chunk (the layout the
    writer makes), the chunk file: the one place that rule is decided. A chunk file
    that is absent means the fill value (Zarr's rule): such arrays are read through
    zarr-python."""
    try:
        meta = json.loads((path / "zarr.json").read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        refuse_zarr_v2(path)
        raise NotFoundError("array not found", path=path) from exc
    shape = tuple(int(s) for s in meta["shape"])
    dtype = np.dtype(meta["data_type"]).newbyteorder("<")
    chunk = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
    codecs = meta.get("codecs", [])
    raw = (chunk == shape and len(codecs) == 1 and codecs[0]["name"] == "bytes"
           and codecs[0].get("configuration", {}).get("endian", "little") == "little"
           and meta["chunk_key_encoding"]["name"] == "default"
           and meta["chunk_key_encoding"].get("configuration", {}).get("separator", "/") == "/")
    chunk_file = path.joinpath("c", *(["0"] * len(shape))) if raw else None
    if chunk_file is not None and not chunk_file.is_file():
        return ArrayMeta(path, dtype, shape, None, absent_chunk=True)
    return ArrayMeta(path, dtype, shape, chunk_file)


def _read_columns(store: Path, table: str, columns: list[str]) -> dict[str, list[Any]]:
    """Columns of a table as Python lists, read by pyarrow on this thread only.

    polars (and pyarrow's thread pool) can deadlock in a process forked after they
    started threads; DataLoader workers are such processes, so this path avoids both.
    """
    import pyarrow.parquet as pq

    t = pq.read_table(table_path(store, table), columns=columns, use_threads=False)
    return {c: t.column(c).to_pylist() for c in columns}


class FeatureReader:
    """Lazy, fork-safe reader of a store's features and frame labels."""

    def __init__(self, store: Path) -> None:
        self.store = Path(store)
        if not features_root(self.store).is_dir():
            raise NotFoundError("store has no features yet", path=features_root(self.store),
                                expected="a store written by `bahfs extract`")
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._sources: dict[tuple[str, str, str], tuple[ArrayMeta, Any]] = {}
        self._videos: dict[str, tuple[str, int]] | None = None
        self._labels: dict[str, np.ndarray] | None = None

    def _check_fork(self) -> None:
        """In a forked worker, drop the parent's file handles (the immutable index and
        labels stay: they are plain Python and numpy objects)."""
        if os.getpid() != self._pid:
            self._pid = os.getpid()
            self.close()

    def close(self) -> None:
        """Drop every open map (a forked child re-maps on first use)."""
        self._sources.clear()

    def __getstate__(self) -> dict[str, Any]:  # pickled into spawn workers: path only
        return {"store": self.store}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.store = state["store"]
        self._reset()

    # -- catalogue -------------------------------------------------------------------
    def featuresets(self) -> dict[str, FeatureSetSpec]:
        """Feature sets in the store, by id."""
        root = features_root(self.store)
        return {d.name: FeatureSetSpec.from_attrs(read_attrs(d)) for d in sorted(root.iterdir())
                if (d / "zarr.json").is_file()}

    def resolve(self, name: str) -> str:
        """A feature set id from an id, an id it had before (``previous_ids``: ids that
        included run options, :mod:`extractors.migrate`), a feature set name, or an
        extractor name (a name must be unambiguous; a feature set's own name wins over
        its extractor's)."""
        sets = self.featuresets()
        if name in sets:
            return name
        root = features_root(self.store)
        matches = [i for i in sets if name in read_attrs(root / i).get("previous_ids", [])] \
            or [i for i, s in sets.items() if s.label == name] or \
            [i for i, s in sets.items() if s.extractor == name]
        if len(matches) != 1:
            raise (NotFoundError if not matches else StoreError)(
                f"{len(matches)} feature sets match {name!r}",
                             expected=f"one of {sorted(sets)}")
        return matches[0]

    def _video_index(self) -> dict[str, tuple[str, int]]:
        self._check_fork()
        if self._videos is None:
            v = _read_columns(self.store, "videos", ["video_id", "participant_id", "n_frames"])
            self._videos = {vid: (pid, int(n)) for vid, pid, n in
                            zip(v["video_id"], v["participant_id"], v["n_frames"], strict=True)}
        return self._videos

    def n_frames(self, video_id: str) -> int:
        return self._locate(video_id)[1]

    def _locate(self, video_id: str) -> tuple[str, int]:
        try:
            return self._video_index()[video_id]
        except KeyError as exc:
            raise NotFoundError(f"video {video_id!r} is not in the videos table",
                                video=video_id) from exc

    def extracted(self, fs_id: str) -> list[str]:
        """Video ids present in feature set ``fs_id``."""
        return sorted(v.name for v in published_videos(self.store, fs_id))

    # -- reads -----------------------------------------------------------------------
    def _source(self, fs_id: str, video_id: str, name: str) -> tuple[ArrayMeta, Any]:
        """(metadata, readable array) of one stored array; opened once per process.

        Raw chunks are memory-mapped with MAP_POPULATE (pages pre-faulted, so window
        reads never fault); other arrays are zarr-python handles. At most _MAX_FDS
        are kept open (oldest closed first)."""
        key = (fs_id, video_id, name)
        src = self._sources.get(key)
        if src is not None:
            return src
        pid, _ = self._locate(video_id)
        path = video_dir(self.store, fs_id, pid, video_id) / name
        if not (path.parent / "zarr.json").is_file():
            raise NotFoundError(f"video {video_id!r} has no features in {fs_id!r}",
                                video=video_id, participant=pid,
                                expected="a video extracted into this feature set")
        meta = array_meta(path)
        data: Any
        if meta.raw_chunk is None:
            data = zarr.open_array(str(path), mode="r")
        else:
            size = meta.shape[0] * meta.row_bytes
            if meta.raw_chunk.stat().st_size != size:
                raise CorruptError("chunk file size does not match its metadata",
                                   path=meta.raw_chunk, video=video_id,
                                   expected=f"{size} bytes")
            with open(meta.raw_chunk, "rb") as fh:
                mm = mmap.mmap(fh.fileno(), 0, prot=mmap.PROT_READ,
                               flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0))
            data = np.frombuffer(mm, dtype=meta.dtype).reshape(meta.shape)
        if len(self._sources) >= _MAX_FDS:
            del self._sources[next(iter(self._sources))]
        self._sources[key] = (meta, data)
        return meta, data

    @staticmethod
    def _read_into(src: tuple[ArrayMeta, Any], start: int, stop: int, out: np.ndarray
                   ) -> None:
        """Rows ``[start, stop)`` of ``src`` into ``out`` (right shape and dtype)."""
        meta, data = src
        if not 0 <= start <= stop <= meta.shape[0]:
            raise StoreError(f"rows [{start}, {stop}) outside video {meta.path.parent.name!r}",
                             path=meta.path, video=meta.path.parent.name,
                             expected=f"0 <= start <= stop <= {meta.shape[0]}")
        out[...] = data[start:stop]

    def read_rows(self, fs_id: str, video_id: str, name: str, start: int, stop: int
                  ) -> np.ndarray:
        """Rows ``[start, stop)`` of array ``name`` of one video."""
        self._check_fork()
        src = self._source(fs_id, video_id, name)
        out = np.empty((max(stop - start, 0), *src[0].shape[1:]), dtype=src[0].dtype)
        self._read_into(src, start, stop, out)
        return out

    def video(self, fs_id: str, video_id: str, names: list[str] | None = None
              ) -> dict[str, np.ndarray]:
        """Every (or the named) array of one video, plus ``timestamps``."""
        return self.frames(fs_id, video_id, 0, self.n_frames(video_id), names)

    def frames(self, fs_id: str, video_id: str, start: int, stop: int,
               names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Rows ``[start, stop)`` of every (or the named) array of one video."""
        spec = self.featuresets()[fs_id]
        wanted = names or ["timestamps", *(a.name for a in spec.arrays)]
        return {k: self.read_rows(fs_id, video_id, k, start, stop) for k in wanted}

    def labels(self, video_id: str) -> np.ndarray:
        """Per-frame A/H labels (int8) of one video, from the frame-label table."""
        self._check_fork()
        if self._labels is None:
            fl = _read_columns(self.store, "frame_labels", ["video_id", "frame", "label"])
            vids = np.asarray(fl["video_id"], dtype=object)
            order = np.lexsort((fl["frame"], vids))
            vids, labels = vids[order], np.asarray(fl["label"], np.int8)[order]
            bounds = np.flatnonzero(vids[1:] != vids[:-1]) + 1
            starts, stops = np.r_[0, bounds], np.r_[bounds, len(vids)]
            self._labels = {str(vids[a]): labels[a:b] for a, b in zip(starts, stops,
                                                                       strict=True)}
        try:
            return self._labels[video_id]
        except KeyError as exc:
            raise NotFoundError(f"no frame labels for video {video_id!r}",
                                video=video_id) from exc

    def gather(self, fs_id: str, name: str, items: Sequence[tuple[str, int]], length: int,
               out: np.ndarray | None = None, *, pad: bool = False) -> np.ndarray:
        """Windows of one array: ``out[b]`` holds rows ``[start, start + length)`` of
        ``items[b] = (video id, start)``, in ``out``'s dtype (cast as numpy assigns).

        ``out`` defaults to a new ``(B, length, ...)`` array of the stored dtype. With
        ``pad`` a window may run past its video's end and those rows are zeros;
        without, that is an error. A window never crosses a video boundary."""
        self._check_fork()
        srcs = [self._source(fs_id, vid, name) for vid, _ in items]
        shape = srcs[0][0].shape[1:] if srcs else ()
        dtype = srcs[0][0].dtype if srcs else np.dtype("f4")
        if out is None:
            out = np.empty((len(items), length, *shape), dtype=dtype)
        elif out.shape != (len(items), length, *shape):
            raise StoreError(f"{fs_id}/{name}: out has shape {out.shape}",
                             expected=f"{(len(items), length, *shape)}")
        for b, ((vid, start), (meta, data)) in enumerate(zip(items, srcs, strict=True)):
            if meta.shape[1:] != shape:
                raise StoreError(f"{name}: video {vid!r} has rows of shape {meta.shape[1:]}",
                                 video=vid, expected=f"{shape} like the rest of the batch")
            stop = min(start + length, meta.shape[0]) if pad else start + length
            if not 0 <= start <= stop <= meta.shape[0]:
                raise StoreError(f"window [{start}, {start + length}) outside video {vid!r}",
                                 path=meta.path, video=vid,
                                 expected=f"0 <= start <= stop <= {meta.shape[0]}")
            out[b, : stop - start] = data[start:stop]
            if stop - start < length:
                out[b, stop - start:] = 0
        return out

    def windows(self, sources: dict[str, tuple[str, str]], items: list[tuple[str, int]],
                length: int) -> dict[str, np.ndarray]:
        """A batch of windows: ``sources`` maps an output key to (feature set, array);
        ``items`` are (video id, first frame). Returns each key as ``(B, length, ...)``
        plus ``labels`` ``(B, length)``. A window never crosses a video boundary."""
        self._check_fork()
        out: dict[str, np.ndarray] = {}
        for key, (fs_id, name) in sources.items():
            dtypes = {self._source(fs_id, vid, name)[0].dtype for vid, _ in items}
            if len(dtypes) > 1:
                raise StoreError(f"{key}: the batch's videos hold {sorted(map(str, dtypes))}",
                                 expected="one dtype across the batch")
            out[key] = self.gather(fs_id, name, items, length)
        labels = np.empty((len(items), length), dtype=np.int8)
        for b, (vid, start) in enumerate(items):
            lab = self.labels(vid)
            if start < 0 or start + length > lab.shape[0]:
                raise StoreError(f"window [{start}, {start + length}) outside video {vid!r}",
                                 video=vid, expected=f"stop <= {lab.shape[0]}")
            labels[b] = lab[start:start + length]
        out["labels"] = labels
        return out
