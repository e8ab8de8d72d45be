"""A contract every on-disk array layout the reader accepts must pass.

As zarr-python's ``StoreTests``: one suite, one subclass per layout. A layout says
how an array of a published video lies on disk (the writer's single raw chunk,
or what another tool may write: other chunks, compression, shards, big-endian).
For each, the reader must return exactly what zarr-python reads, whole and in
row ranges, stay correct across fork and pickle, and ``verify`` must not call the
array damaged. A Zarr v2 array is refused with a clear error.
"""

from __future__ import annotations

import multiprocessing as mp
import pickle
import shutil
import zlib
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import zarr
from zarr.codecs import BytesCodec, ZstdCodec

from store.errors import CorruptError
from store.features import ArraySpec, FeatureSetSpec, VideoFeatures
from store.layout import video_dir
from store.reader import FeatureReader, array_meta
from store.tables import write_table
from store.verify import verify_store
from store.writer import FeatureWriter

SPEC = FeatureSetSpec("probe", {"layout": "contract"}, "cd" * 32,
                      (ArraySpec("values", "float32", (6,)),))
VID, PID, N = "82553__Visite_1__Q1", "82553", 131


def _features() -> VideoFeatures:
    rng = np.random.default_rng(zlib.crc32(VID.encode()))
    return VideoFeatures(SPEC, VID, PID, np.arange(N) / 24.0,
                         {"values": rng.standard_normal((N, 6)).astype(np.float32)})


def _child(reader: FeatureReader, q: Any) -> None:
    q.put(reader.read_rows(SPEC.id, VID, "values", 0, N).tobytes())


class ReaderLayoutContract:
    """Subclass, override :meth:`lay_out`, and say whether the reader's fast path
    (a memory map of raw bytes) applies to the layout."""

    fast_path: ClassVar[bool] = False
    rewrite: ClassVar[bool] = True  # False: keep the array the writer made

    def lay_out(self, group: zarr.Group, data: np.ndarray) -> np.ndarray:
        """Store ``data`` (or a variant of it) as ``values``; return what was stored."""
        raise NotImplementedError

    @pytest.fixture
    def store(self, tmp_path: Path) -> Path:
        store = tmp_path / "store"
        write_table(store, "videos", _videos_table())
        FeatureWriter(store).write(_features())
        path = video_dir(store, SPEC.id, PID, VID)
        self.stored = _features().arrays["values"]
        if self.rewrite:
            shutil.rmtree(path / "values")
            self.stored = self.lay_out(zarr.open_group(str(path), mode="a"), self.stored)
        return store

    def _direct(self, store: Path) -> np.ndarray:
        path = video_dir(store, SPEC.id, PID, VID) / "values"
        return np.asarray(zarr.open_array(str(path), mode="r")[...])

    def test_values_equal_zarr_python(self, store: Path) -> None:
        want = self._direct(store)
        np.testing.assert_array_equal(want, self.stored)
        reader = FeatureReader(store)
        np.testing.assert_array_equal(reader.video(SPEC.id, VID)["values"], want)
        for a, b in ((0, 1), (5, 40), (N - 3, N), (0, N)):
            np.testing.assert_array_equal(reader.read_rows(SPEC.id, VID, "values", a, b),
                                          want[a:b])

    def test_fast_path_only_where_the_bytes_are_raw(self, store: Path) -> None:
        meta = array_meta(video_dir(store, SPEC.id, PID, VID) / "values")
        assert (meta.raw_chunk is not None) == self.fast_path

    def test_fork_safe(self, store: Path) -> None:
        reader = FeatureReader(store)
        parent = reader.read_rows(SPEC.id, VID, "values", 0, N).tobytes()  # caches open
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=_child, args=(reader, q))
        p.start()
        assert q.get(timeout=30) == parent
        p.join(30)
        assert p.exitcode == 0

    def test_verify_never_calls_it_damaged(self, store: Path) -> None:
        errors = [p for p in verify_store(store)
                  if p.severity == "error" and p.where.startswith("features/")]
        assert errors == []

    def test_pickle_safe(self, store: Path) -> None:
        reader = FeatureReader(store)
        before = reader.read_rows(SPEC.id, VID, "values", 2, 50)
        clone = pickle.loads(pickle.dumps(reader))
        np.testing.assert_array_equal(clone.read_rows(SPEC.id, VID, "values", 2, 50), before)


def _videos_table() -> Any:
    import polars as pl

    return pl.DataFrame([{
        "video_id": VID, "participant_id": PID, "visit": "Visite_1", "question": 1,
        "release_id": f"Videos/{PID}/Visite_1/x.mp4", "path": f"Videos/{PID}/Visite_1/x.mp4",
        "source": "", "duration_s": N / 24, "fps": 24.0, "n_frames": N, "has_audio": True,
        "global_label": 0, "split": "train", "annotator_id": "A1", "transcript": ""}])


class TestWriterLayout(ReaderLayoutContract):
    """What ``store.writer`` makes: one uncompressed little-endian chunk."""

    fast_path = True
    rewrite = False


class TestOtherChunks(ReaderLayoutContract):
    def lay_out(self, group: zarr.Group, data: np.ndarray) -> np.ndarray:
        group.create_array("values", shape=data.shape, chunks=(16, 3), dtype=data.dtype,
                           compressors=None)[...] = data
        return data


class TestZstd(ReaderLayoutContract):
    def lay_out(self, group: zarr.Group, data: np.ndarray) -> np.ndarray:
        group.create_array("values", shape=data.shape, chunks=data.shape, dtype=data.dtype,
                           compressors=ZstdCodec(level=3))[...] = data
        return data


class TestSharded(ReaderLayoutContract):
    def lay_out(self, group: zarr.Group, data: np.ndarray) -> np.ndarray:
        group.create_array("values", shape=data.shape, shards=(64, 6), chunks=(16, 6),
                           dtype=data.dtype)[...] = data
        return data


class TestBigEndian(ReaderLayoutContract):
    def lay_out(self, group: zarr.Group, data: np.ndarray) -> np.ndarray:
        group.create_array("values", shape=data.shape, chunks=data.shape, dtype=data.dtype,
                           serializer=BytesCodec(endian="big"), compressors=None)[...] = data
        return data


class TestAbsentChunks(ReaderLayoutContract):
    """Chunks that hold only the fill value are not written (Zarr's default): absent."""

    def lay_out(self, group: zarr.Group, data: np.ndarray) -> np.ndarray:
        data = data.copy()
        data[16:48] = 0  # two whole 16-row chunks of fill value
        arr = group.create_array("values", shape=data.shape, chunks=(16, 6), dtype=data.dtype,
                                 compressors=None, fill_value=0,
                                 config={"write_empty_chunks": False})
        arr[...] = data
        assert not (Path(arr.store_path.store.root) / arr.path / "c" / "1").exists()
        return data


class TestOneAbsentChunk(ReaderLayoutContract):
    """The writer's layout, but the whole video is the fill value: no chunk file."""

    def lay_out(self, group: zarr.Group, data: np.ndarray) -> np.ndarray:
        zeros = np.zeros_like(data)
        group.create_array("values", shape=data.shape, chunks=data.shape, dtype=data.dtype,
                           compressors=None, fill_value=0,
                           config={"write_empty_chunks": False})[...] = zeros
        return zeros


def test_a_zarr_v2_array_is_refused_clearly(tmp_path: Path) -> None:
    store = tmp_path / "store"
    write_table(store, "videos", _videos_table())
    FeatureWriter(store).write(_features())
    path = video_dir(store, SPEC.id, PID, VID) / "values"
    shutil.rmtree(path)
    zarr.create_array(str(path), shape=(N, 6), dtype="float32", zarr_format=2)
    with pytest.raises(CorruptError, match="Zarr v2") as info:
        FeatureReader(store).read_rows(SPEC.id, VID, "values", 0, 5)
    assert ".zarray" in str(info.value)
