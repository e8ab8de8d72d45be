"""Aligned face crops: carried forward where no face is found, read back as windows,
exported as the official baseline's video arrays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from extractors.face_crop import FaceCropConfig, FaceCropExtractor
from extractors.pipeline import extract_all
from store.errors import ConfigError
from store.export import export_baseline
from store.ingest import ingest
from store.reader import FeatureReader
from store.tables import read_table
from store.writer import FeatureWriter

pytestmark = pytest.mark.slow  # real decoding and CenterFace on the sample's videos


@pytest.fixture(scope="module")
def crops(sample_release: Path) -> dict[str, np.ndarray]:
    truth = json.loads((sample_release / "bahfs_truth.json").read_text())
    # the video where the drawn face is hidden (turned away or gone) the longest
    rel = max(truth, key=lambda r: truth[r]["n_frames"]
              - sum(e - s for s, e in truth[r]["face_runs"]))
    (feats,) = extract_all(sample_release / rel, [FaceCropExtractor()])
    return feats.arrays


def test_crops_follow_faces_and_carry_forward(crops: dict[str, np.ndarray]) -> None:
    crop, found = crops["crop"], crops["has_face"]
    assert crop.dtype == np.uint8 and crop.shape[1:] == (112, 112, 3)
    assert found.any() and not found.all()
    first = int(np.argmax(found))
    assert not crop[:first].any()  # before the first face: black
    for i in np.flatnonzero(~found):
        if i > first:  # where no face is found: the last found frame's crop again
            last = i - int(np.argmax(found[:i][::-1])) - 1
            np.testing.assert_array_equal(crop[i], crop[last])
    assert crop[found].mean() > 20  # a face, not an empty crop


def test_bigger_crops_and_bad_sizes() -> None:
    with pytest.raises(ConfigError, match="32 to 256"):
        FaceCropExtractor(FaceCropConfig(size=512))
    spec = FaceCropExtractor(FaceCropConfig(size=256)).spec()
    assert dict((a.name, a.shape) for a in spec.arrays)["crop"] == (256, 256, 3)


def test_crops_in_the_store_as_windows_and_exported(sample_release: Path,
                                                     tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest(sample_release, store)
    videos = read_table(store, "videos").head(2)
    extractor = FaceCropExtractor(FaceCropConfig(size=64))
    writer = FeatureWriter(store)
    for vid, pid, src, path in videos.select("video_id", "participant_id", "source",
                                             "path").iter_rows():
        (feats,) = extract_all(Path(src) / path, [extractor], video_id=vid,
                               participant_id=pid)
        assert writer.write(feats).outcome == "written"
    fs = extractor.spec().id
    reader = FeatureReader(store)
    items = [(v, 10) for v in videos["video_id"]]
    batch = reader.windows({"video": (fs, "crop")}, items, 24)
    assert batch["video"].shape == (2, 24, 64, 64, 3) and batch["video"].dtype == np.uint8
    assert batch["labels"].shape == (2, 24)
    whole = reader.video(fs, items[0][0])["crop"]
    np.testing.assert_array_equal(batch["video"][0], whole[10:34])
    report = export_baseline(store, tmp_path / "export")
    assert report.modalities == {"video": f"{fs}:crop"}
    for rid, n in videos.select("release_id", "n_frames").iter_rows():
        arr = np.load(tmp_path / "export" / "video" / Path(rid).with_suffix(".npy"))
        assert arr.shape == (n, 64, 64, 3) and arr.dtype == np.uint8
