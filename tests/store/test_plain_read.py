"""The store read without bahfs: axis names, coordinates and the docs' polars/xarray
recipe, on a store written by :class:`store.writer.FeatureWriter`."""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import xarray as xr

from store.catalog import refresh_catalog
from store.errors import ConfigError
from store.features import ArraySpec, FeatureSetSpec, VideoFeatures
from store.ingest import ingest
from store.reader import FeatureReader
from store.tables import read_table
from store.verify import verify_store
from store.writer import FeatureWriter

DOC = Path(__file__).resolve().parents[2] / "docs" / "store.md"
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
POINTS = tuple(f"{p}_{c}" for p in ("left_eye", "right_eye", "nose", "mouth_left",
                                    "mouth_right") for c in ("x", "y"))
SPEC = FeatureSetSpec("face", {"model": "plain"}, "cd" * 32, (
    ArraySpec("embedding", "float16", (8,), "pooled features"),
    ArraySpec("emotions", "float16", (7,), ", ".join(EMOTIONS), ("emotion",), (EMOTIONS,)),
    ArraySpec("landmarks", "float32", (10,), "x, y of five points", ("landmark_coord",),
              (POINTS,)),
    ArraySpec("crop", "uint8", (2, 2, 3), "a tiny face", ("crop_y", "crop_x", "channel"),
              ((), (), ("red", "green", "blue"))),
    ArraySpec("has_face", "bool", (), "a face in the frame")))


def _features(vid: str, pid: str, n: int) -> VideoFeatures:
    rng = np.random.default_rng(zlib.crc32(vid.encode()))
    return VideoFeatures(SPEC, vid, pid, np.arange(n) / 24.0, {
        "embedding": rng.standard_normal((n, 8)).astype(np.float16),
        "emotions": rng.random((n, 7)).astype(np.float16),
        "landmarks": rng.random((n, 10)).astype(np.float32),
        "crop": rng.integers(0, 255, (n, 2, 2, 3), dtype=np.uint8),
        "has_face": rng.random(n) > 0.3})


@pytest.fixture(scope="module")
def written(sample_release: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[Path, VideoFeatures]:
    """An ingested store with one labelled video's features written and catalogued
    (read-only: the tests only read it)."""
    store = tmp_path_factory.mktemp("plain") / "store"
    ingest(sample_release, store)
    videos = read_table(store, "videos").filter(pl.col("global_label").is_not_null())
    vid, pid, n = videos.select("video_id", "participant_id", "n_frames").row(0)
    feats = _features(vid, pid, n)
    FeatureWriter(store).write(feats)
    refresh_catalog(store)
    return store, feats


def test_xarray_sees_named_axes_coordinates_and_frame_times(
        written: tuple[Path, VideoFeatures]) -> None:
    store, feats = written
    group = f"{SPEC.id}/{feats.participant_id}/{feats.video_id}"
    ds = xr.open_zarr(store / "features.zarr", group=group, consolidated=False)
    assert ds["emotions"].dims == ("frame", "emotion")
    assert ds["landmarks"].dims == ("frame", "landmark_coord")
    assert ds["crop"].dims == ("frame", "crop_y", "crop_x", "channel")
    assert ds["embedding"].dims == ("frame", "embedding_component")
    assert ds["has_face"].dims == ("frame",)
    assert list(ds["emotion"].values) == list(EMOTIONS)
    assert list(ds["landmark_coord"].values) == list(POINTS)
    assert list(ds["channel"].values) == ["red", "green", "blue"]
    assert set(ds.coords) == {"timestamps", "emotion", "landmark_coord", "channel"}
    assert ds["timestamps"].dims == ("frame",) and "timestamps" not in ds.data_vars
    np.testing.assert_array_equal(ds["timestamps"].values, feats.timestamps)
    np.testing.assert_array_equal(ds["emotions"].sel(emotion="happy").values,
                                  feats.arrays["emotions"][:, 3])
    np.testing.assert_array_equal(ds["crop"].values, feats.arrays["crop"])
    assert ds["emotions"].attrs["description"] == ", ".join(EMOTIONS)
    tree = xr.open_datatree(store / "features.zarr", engine="zarr", consolidated=False)
    assert tree[group].dataset["landmarks"].dims == ("frame", "landmark_coord")


def test_bahfs_reads_and_verifies_the_same_with_coordinates_beside(
        written: tuple[Path, VideoFeatures]) -> None:
    store, feats = written
    got = FeatureReader(store).video(SPEC.id, feats.video_id)
    assert set(got) == {"timestamps", *feats.arrays}  # the coordinates are not features
    for name, arr in feats.arrays.items():
        np.testing.assert_array_equal(got[name], arr)
    problems = [p for p in verify_store(store) if p.severity == "error"]
    assert problems == []


def test_the_docs_recipe_runs_on_a_written_store(written: tuple[Path, VideoFeatures]) -> None:
    store, feats = written
    text = DOC.read_text(encoding="utf-8")
    marker = "<!-- the block below runs in tests/store/test_plain_read.py"
    block = re.search(r"```python\n(.*?)```", text[text.index(marker):], re.S)
    assert block is not None
    scope: dict[str, Any] = {}
    exec(block.group(1).replace('"STORE"', repr(str(store))), scope)
    assert scope["fs_id"] == SPEC.id and scope["vid"] == feats.video_id
    frames = scope["frames"]
    labels = read_table(store, "frame_labels").filter(pl.col("video_id") == feats.video_id)
    assert frames.height == feats.n_frames
    assert frames["label"].to_list() == labels.sort("frame")["label"].to_list()
    np.testing.assert_array_equal(frames["happy"].to_numpy(),
                                  feats.arrays["emotions"][:, 3].astype(np.float32))


def test_axis_names_and_labels_leave_the_id_alone() -> None:
    bare = FeatureSetSpec("face", {"model": "plain"}, "cd" * 32, tuple(
        ArraySpec(a.name, a.dtype, a.shape, a.doc) for a in SPEC.arrays))
    assert bare.id == SPEC.id
    assert bare.arrays[1].dimension_names == ("frame", "emotions_component")
    assert bare.arrays[3].dimension_names == ("frame", "crop_axis1", "crop_axis2",
                                              "crop_axis3")
    back = FeatureSetSpec.from_attrs(SPEC.to_attrs())
    assert back == SPEC and back.coordinates()["emotion"] == EMOTIONS
    old = SPEC.to_attrs()  # attributes written before axes were named
    old["arrays"] = [{k: a[k] for k in ("name", "dtype", "shape", "doc")}
                     for a in old["arrays"]]
    assert FeatureSetSpec.from_attrs(old) == bare


@pytest.mark.parametrize("bad", [
    {"dims": ("a", "b")},  # one axis, two names
    {"dims": ("frame",)},
    {"dims": ("x",)},  # the array's own name
    {"dims": ("Bad-name",)},
    {"labels": (("a", "b"),)},  # three columns, two labels
    {"labels": (("a", "a", "b"),)},
])
def test_bad_axes_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ArraySpec("x", "float32", (3,), "", **bad)


def test_axes_that_disagree_across_arrays_are_refused() -> None:
    a = ArraySpec("a", "float32", (3,), "", ("xyz",), (("x", "y", "z"),))
    with pytest.raises(ConfigError, match="one size per axis"):
        FeatureSetSpec("f", {}, "0" * 64, (a, ArraySpec("b", "float32", (2,), "", ("xyz",))))
    with pytest.raises(ConfigError, match="one set of labels"):
        FeatureSetSpec("f", {}, "0" * 64, (a, ArraySpec("b", "float32", (3,), "", ("xyz",),
                                                        (("u", "v", "w"),))))
    with pytest.raises(ConfigError, match="named after an array"):
        FeatureSetSpec("f", {}, "0" * 64, (a, ArraySpec("xyz", "float32")))
