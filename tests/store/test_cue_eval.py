"""Cue statistics: AUC per cue and feature column, and `bahfs cues evaluate`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from bahfs.cli import app
from store.cue_eval import auc, evaluate_cues
from store.features import ArraySpec, FeatureSetSpec, VideoFeatures
from store.ingest import ingest
from store.tables import read_table
from store.writer import FeatureWriter


def test_auc_is_the_pairwise_win_rate_with_ties_as_half() -> None:
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, 300).astype(float)  # many ties
    y = rng.random(300) < 0.3
    pos, neg = s[y], s[~y]
    brute = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / \
        (len(pos) * len(neg))
    assert auc(s, y) == pytest.approx(brute)
    assert np.isnan(auc(s, np.zeros(300, bool)))


SPEC = FeatureSetSpec(
    "behaviour", {"test": True}, "cd" * 32,
    (ArraySpec("head_pose", "float32", (3,)), ArraySpec("has_face", "bool"),
     ArraySpec("lld", "float32", (25,))),
    extra={"columns": {"head_pose": ["yaw", "pitch", "roll"]}, "signed": ["head_pose"],
           "masks": {"head_pose": "has_face"}})


@pytest.mark.slow
def test_a_feature_that_moves_inside_cue_segments_carries_the_cue(
        sample_release: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest(sample_release, store)
    segs = read_table(store, "segments").join(
        read_table(store, "cues").filter(pl.col("cue") == "Look away"),
        on=["video_id", "segment"])
    assert segs.height > 0
    w = FeatureWriter(store)
    rng = np.random.default_rng(0)
    for vid, pid, n in read_table(store, "videos").select(
            "video_id", "participant_id", "n_frames").iter_rows():
        pose = rng.normal(0, 2, (n, 3)).astype(np.float32)
        for s, e in segs.filter(pl.col("video_id") == vid).select(
                "start_frame", "end_frame").iter_rows():
            pose[s:e + 1, 0] = rng.choice([-40, 40], e + 1 - s)  # turns either way
        face = np.ones(n, bool)
        face[::7] = False  # masked frames are left out of the face arrays' AUC
        lld = rng.normal(0, 1, (n, 25)).astype(np.float32)  # wider than 8 columns
        lld[:, 17] = np.abs(pose[:, 0])  # its 18th column carries the cue (no mask)
        pose[~face] = 0
        w.write(VideoFeatures(SPEC, vid, pid, np.arange(n) / 24.0,
                              {"head_pose": pose, "has_face": face, "lld": lld}))
    table = evaluate_cues(store, min_segments=1)
    look = {r["feature"]: r for r in table.filter(pl.col("cue") == "Look away").to_dicts()}
    assert look["|head_pose.yaw|"]["auc"] > 0.99  # either way: the magnitude separates
    assert abs(look["head_pose.pitch"]["auc"] - 0.5) < 0.1
    assert look["head_pose.yaw"]["pos_frames"] < look["has_face"]["pos_frames"]
    assert {f"lld.{i}" for i in range(25)} <= set(look)  # every column scored
    assert look["lld.17"]["auc"] > 0.95 and abs(look["lld.3"]["auc"] - 0.5) < 0.1
    narrow = evaluate_cues(store, min_segments=1, max_width=8)
    assert not narrow.filter(pl.col("feature").str.starts_with("lld")).height

    out = tmp_path / "plots"
    res = CliRunner().invoke(app, ["cues", "evaluate", str(store), "--min-segments", "1",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "Look away" in res.output and "|head_pose.yaw|" in res.output
    assert (out / "cue_auc.png").stat().st_size > 0
    assert pl.read_csv(out / "cue_auc.csv").height == table.height
    too_few = CliRunner().invoke(app, ["cues", "evaluate", str(store), "--min-segments",
                                       "100000", "--out", str(out)])
    assert too_few.exit_code == 2 and "segments" in too_few.output


@pytest.mark.slow  # prosody and fluency (Whisper) on every video of the sample release
def test_the_cue_table_scores_prosody_and_fluency_on_a_generated_release(
        sample_release: Path, tmp_path: Path) -> None:
    from extractors.fluency import FluencyExtractor
    from extractors.pipeline import extract_all
    from extractors.prosody import ProsodyExtractor

    pytest.importorskip("opensmile", reason="the prosody extra (bash .ci/setup.sh)")
    store = tmp_path / "store"
    ingest(sample_release, store)
    writer, built = FeatureWriter(store), [ProsodyExtractor(), FluencyExtractor()]
    for vid, pid, path in read_table(store, "videos").select(
            "video_id", "participant_id", "path").iter_rows():
        for f in extract_all(sample_release / path, built, video_id=vid, participant_id=pid):
            writer.write(f)
    for feature_set, columns in (("prosody", {"lld.Loudness_sma3", "lld.mfcc4_sma3",
                                              "lld.F3amplitudeLogRelF0_sma3nz", "pause_s"}),
                                 ("fluency", {"pause_fraction", "words_per_s",
                                              "filler_sound_count", "filled_pause_count"})):
        out = tmp_path / feature_set
        res = CliRunner().invoke(app, ["cues", "evaluate", str(store), "--feature-set",
                                       feature_set, "--min-segments", "1", "--out", str(out)])
        assert res.exit_code == 0, res.output
        table = pl.read_csv(out / "cue_auc.csv")
        pause = table.filter(pl.col("cue") == "Pause")
        assert columns <= set(pause["feature"].to_list())  # 25 descriptors: none left out
        assert pause["auc"].drop_nulls().len() == pause.height
