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

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from store.arrays import ArrayMeta, array_meta
from store.backend import Store, VideoRef
from store.errors import NotFoundError, StoreError
from store.features import FeatureSetSpec
from store.local import as_store

__all__ = ["ArrayMeta", "FeatureReader", "array_meta"]


def _fd_budget() -> int:
    """Open chunk files kept at once: half the process's descriptor limit, at most 8192."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(64, min(8192, soft // 2))


_MAX_FDS = _fd_budget()  # each map holds a file descriptor


class FeatureReader:
    """Lazy, fork-safe reader of a store's features and frame labels."""

    def __init__(self, store: Store | Path) -> None:
        self.store = as_store(store)
        if not self.store.has_features():
            raise NotFoundError(f"store {self.store.location} has no features yet",
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
        return self.store.feature_sets()

    def resolve(self, name: str) -> str:
        """A feature set id from an id, an id it had before (``previous_ids``: ids that
        included run options, :mod:`extractors.migrate`), a feature set name, or an
        extractor name (a name must be unambiguous; a feature set's own name wins over
        its extractor's)."""
        sets = self.featuresets()
        if name in sets:
            return name
        matches = [i for i in sets
                   if name in self.store.feature_set_attrs(i).get("previous_ids", [])] \
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
            v = self.store.read_columns("videos", ["video_id", "participant_id", "n_frames"])
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
        return sorted(v.video_id for v in self.store.videos(fs_id))

    # -- reads -----------------------------------------------------------------------
    def _source(self, fs_id: str, video_id: str, name: str) -> tuple[ArrayMeta, Any]:
        """(metadata, readable array) of one stored array; opened once per process.

        Raw chunks are memory-mapped (:func:`store.arrays.open_array`); at most
        _MAX_FDS are kept open (oldest closed first)."""
        key = (fs_id, video_id, name)
        src = self._sources.get(key)
        if src is not None:
            return src
        pid, _ = self._locate(video_id)
        meta, data = self.store.open_array(VideoRef(fs_id, pid, video_id), name)
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
            fl = self.store.read_columns("frame_labels", ["video_id", "frame", "label"])
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
