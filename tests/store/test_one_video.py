"""A video outside any release stored as a store of its own (``bahfs extract-video
--out``): ids, what is refused, and that it reads like any store."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import xarray as xr

from bahfs.sample.script import VideoPlan
from store.consent import subject_hash
from store.errors import ConfigError, ConsentError, StoreError
from store.features import ArraySpec, FeatureSetSpec, VideoFeatures
from store.local import LocalStore
from store.media import probe_video
from store.one_video import (
    VideoOutsideRelease,
    describe_video,
    id_from_file,
    one_video_store,
    publish_video,
)
from store.reader import FeatureReader
from store.status import store_status
from store.verify import verify_store

Media = dict[str, tuple[Path, VideoPlan | None]]
DOC = Path(__file__).resolve().parents[2] / "docs" / "store.md"
EMOTIONS = ("angry", "happy", "sad")


def _spec(name: str, width: int) -> FeatureSetSpec:
    return FeatureSetSpec(name, {"width": width}, "ab" * 32, (
        ArraySpec("emotions", "float16", (3,), "scores", ("emotion",), (EMOTIONS,)),
        ArraySpec("vector", "float32", (width,), "a vector")), name=name)


def _features(video: VideoOutsideRelease, spec: FeatureSetSpec, n: int) -> VideoFeatures:
    rng = np.random.default_rng(len(spec.id))
    width = spec.arrays[1].shape[0]
    return VideoFeatures(spec, video.video_id, video.participant_id, np.arange(n) / 24.0,
                         {"emotions": rng.random((n, 3)).astype(np.float16),
                          "vector": rng.random((n, width)).astype(np.float32)},
                         {"transcript": '{"words": []}', "device": "cpu"})


def test_ids_come_from_the_file_name_unless_given(tmp_path: Path) -> None:
    assert id_from_file(Path("/x/My clip (2).mp4")) == "My_clip_2"
    assert id_from_file(Path("a..b.mov")) == "a.b"
    plain = describe_video(tmp_path / "answer.mp4")
    assert (plain.video_id, plain.participant_id) == ("answer", "answer")
    assert plain.file.is_absolute()
    given = describe_video(Path("answer.mp4"), participant_id="p7", video_id="q3")
    assert (given.video_id, given.participant_id) == ("q3", "p7")
    with pytest.raises(ConfigError, match=r"--participant: .*'\.\./x'"):
        describe_video(Path("answer.mp4"), participant_id="../x")
    with pytest.raises(ConfigError, match="--video-id"):
        describe_video(Path("answer.mp4"), video_id="a b")
    with pytest.raises(ConfigError, match="gives no usable id"):
        describe_video(Path("(((.mp4"))


def test_a_one_video_store_reads_like_any_store_and_a_rerun_adds_nothing(
        media: Media, tmp_path: Path) -> None:
    file = media["speech24"][0]
    video = describe_video(file, participant_id="p1")
    n = probe_video(file).n_frames
    out = tmp_path / "one"
    sets = [_spec("narrow", 2), _spec("wide", 5)]
    for _ in range(2):  # the second run: same video, same OUT
        st = one_video_store(out, video)
        outcomes = [r.outcome for r in publish_video(st, video,
                                                     [_features(video, s, n) for s in sets])]
    assert outcomes == ["skipped", "skipped"]
    st = LocalStore(out)
    assert st.read_table("videos").select("video_id", "participant_id", "n_frames",
                                          "path").rows() == [("speech24", "p1", n,
                                                              "speech24.mp4")]
    assert st.read_table("participants")["participant_id"].to_list() == ["p1"]
    assert st.read_table("extracted").height == 2
    assert verify_store(out) == []
    reader = FeatureReader(out)
    wide = reader.resolve("wide")
    got = reader.video(wide, "speech24")
    assert got["vector"].shape == (n, 5) and got["timestamps"].shape == (n,)
    assert st.video_attrs(st.videos(wide)[0])["transcript"] == '{"words": []}'
    status = store_status(out)
    assert [(f.extracted, f.pending) for f in status.feature_sets] == [(1, 0), (1, 0)]
    ds = xr.open_zarr(out / "features.zarr", group=f"{wide}/p1/speech24",
                      consolidated=False)
    assert list(ds["emotion"].values) == list(EMOTIONS) and ds.sizes["frame"] == n
    _docs_recipe_reads(out, n)


def _docs_recipe_reads(out: Path, n: int) -> None:
    """The docs' plain polars/xarray block for a one-video store, run as written."""
    text = DOC.read_text(encoding="utf-8")
    marker = "<!-- the block below runs in tests/store/test_one_video.py"
    block = re.search(r"```python\n(.*?)```", text[text.index(marker):], re.S)
    assert block is not None
    code = block.group(1).replace('"OUT/', f'"{out}/').replace('"face-"', '"narrow-"')
    scope: dict[str, Any] = {}
    exec(code, scope)
    assert (scope["pid"], scope["vid"]) == ("p1", "speech24")
    assert scope["ds"]["vector"].shape == (n, 2)


def test_what_a_one_video_store_refuses(media: Media, tmp_path: Path) -> None:
    file, other = media["speech24"][0], media["fps30"][0]
    video = describe_video(file)
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    with pytest.raises(StoreError, match="not a bahfs store"):
        one_video_store(full, video)
    release = tmp_path / "release_store"
    LocalStore(release).write_manifest({"dataset": "/data/bah/release"})
    with pytest.raises(StoreError, match="ingested from a release"):
        one_video_store(release, video)
    out = tmp_path / "one"
    n = probe_video(file).n_frames
    publish_video(one_video_store(out, video), video, [_features(video, _spec("a", 2), n)])
    clash = describe_video(other, video_id=video.video_id)
    with pytest.raises(StoreError, match="another --video-id"):
        one_video_store(out, clash)
    with pytest.raises(StoreError, match="the file changed"):
        publish_video(LocalStore(out), video, [_features(video, _spec("b", 2), n - 1)])
    second = describe_video(other)  # another video joins beside the first
    publish_video(one_video_store(out, second), second,
                  [_features(second, _spec("a", 2), probe_video(other).n_frames)])
    assert sorted(LocalStore(out).read_table("videos")["video_id"]) == ["fps30", "speech24"]
    assert verify_store(out) == []
    LocalStore(out).write_table("withdrawals", pl.DataFrame(
        {"subject_sha256": [subject_hash("speech24")],
         "withdrawn_at": ["2026-12-07T00:00:00+00:00"]}))
    with pytest.raises(ConsentError):
        one_video_store(out, video)
