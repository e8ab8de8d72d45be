"""Ingest: consent applied everywhere, probing, quarantine, idempotence."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml

from store.consent import ConsentPolicy
from store.errors import ConfigError
from store.ingest import ingest
from store.release import codebook as cb
from store.schema import INGEST_TABLES
from store.tables import read_manifest, read_table


def _declined(root: Path) -> dict[str, set[str]]:
    meta = yaml.safe_load((root / cb.META_YML).read_text())
    return {k: {p for p, m in meta.items() if m[f"Use in {k}"] == "No"}
            for k in ("challenges", "publications")}


def _all_pids(store: Path) -> set[str]:
    pids: set[str] = set()
    for name in INGEST_TABLES:
        if name == "exclusions":
            continue
        pids |= set(read_table(store, name)["participant_id"].to_list())
    return pids


def test_non_consented_participants_are_nowhere(sample_release: Path, tmp_path: Path) -> None:
    declined = _declined(sample_release)
    excluded = declined["challenges"] | declined["publications"]
    assert excluded, "the sample must contain a participant who declined"
    report = ingest(sample_release, tmp_path / "store")
    assert set(report.excluded) == excluded
    assert not _all_pids(tmp_path / "store") & excluded
    excl = read_table(tmp_path / "store", "exclusions")
    assert set(excl["participant_id"]) == excluded
    assert all(r.startswith("declined use in") for r in excl["reason"])
    assert read_manifest(tmp_path / "store")["excluded"] == report.excluded


def test_policy_can_require_only_publications(sample_release: Path, tmp_path: Path) -> None:
    declined = _declined(sample_release)
    report = ingest(sample_release, tmp_path / "s", ConsentPolicy(require=("publications",)))
    assert set(report.excluded) == declined["publications"]
    with pytest.raises(ConfigError, match="unknown consent"):
        ConsentPolicy(require=("marketing",))


def test_tables_match_the_release(sample_release: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    report = ingest(sample_release, store)
    videos = read_table(store, "videos")
    labels = read_table(store, "frame_labels")
    assert report.videos == videos.height > 0
    per_video = labels.group_by("video_id").agg(pl.len().alias("n"), pl.col("frame").max())
    joined = videos.join(per_video, on="video_id")
    assert (joined["n"] == joined["n_frames"]).all()
    assert (joined["frame"] == joined["n_frames"] - 1).all()
    assert videos["fps"].to_list() == [24.0] * videos.height
    segs = read_table(store, "segments")
    assert (segs["start_frame"] <= segs["end_frame"]).all()
    assert set(read_table(store, "cues")["modality"]) <= set(cb.CODEBOOK)
    assert videos.filter(pl.col("global_label") == 1).height == segs["video_id"].n_unique()


def test_rerun_is_idempotent(sample_release: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest(sample_release, store)
    first = {n: read_table(store, n) for n in INGEST_TABLES}
    ingest(sample_release, store)
    for name, df in first.items():
        assert read_table(store, name).equals(df), name
    leftovers = [p.name for p in (store / "tables").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_broken_videos_are_quarantined_and_the_rest_lands(sample_release: Path,
                                                          mutable_release: Path,
                                                          tmp_path: Path) -> None:
    videos_dir = mutable_release / cb.VIDEOS_DIR
    videos_dir.unlink()
    shutil.copytree(sample_release / cb.VIDEOS_DIR, videos_dir)
    ok_report = ingest(mutable_release, tmp_path / "ok")
    ids = read_table(tmp_path / "ok", "videos").select("video_id", "path").rows()
    (empty_id, empty_rel), (cut_id, cut_rel) = ids[0], ids[1]
    (mutable_release / empty_rel).write_bytes(b"")
    data = (mutable_release / cut_rel).read_bytes()
    (mutable_release / cut_rel).write_bytes(data[: len(data) // 3])
    report = ingest(mutable_release, tmp_path / "store")
    assert set(report.quarantined) == {empty_id, cut_id}
    assert "empty" in report.quarantined[empty_id]
    assert "truncated" in report.quarantined[cut_id]
    q = read_table(tmp_path / "store", "quarantine")
    assert set(q["video_id"]) == {empty_id, cut_id} and set(q["stage"]) == {"ingest"}
    assert report.videos == ok_report.videos - 2
    landed = set(read_table(tmp_path / "store", "frame_labels")["video_id"])
    assert not landed & {empty_id, cut_id}
    assert len(landed) == report.videos


def test_labels_of_another_length_quarantine_that_video_only(sample_release: Path,
                                                             mutable_release: Path,
                                                             tmp_path: Path) -> None:
    from store.release.yamlio import dump_yaml, load_yaml

    path = mutable_release / cb.ANNOTATIONS_YAML
    data = load_yaml(path)
    ann = next(v for v in data.values() if not v["fr_detailed_ah"])
    ann["frame_annotation"] = ann["frame_annotation"][:-5]  # five labels short
    path.write_text(dump_yaml(data))
    report = ingest(mutable_release, tmp_path / "store")
    videos = read_table(tmp_path / "store", "quarantine")
    bad = videos["video_id"].to_list()
    assert len(bad) == 1 and list(report.quarantined) == bad
    assert "annotation labels" in report.quarantined[bad[0]]
    assert report.videos == ingest(sample_release, tmp_path / "ok").videos - 1
    assert bad[0] not in set(read_table(tmp_path / "store", "frame_labels")["video_id"])
