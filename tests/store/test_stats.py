"""Cue statistics: exact counts on a hand-made store, and against the generator's plans."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from bahfs.sample.generate import SampleConfig, plan_dataset
from store import stats
from store.ingest import ingest
from store.plots import plot_stats
from store.tables import write_table


def _participant(pid: str, gender: str, split: str) -> dict[str, object]:
    return {"participant_id": pid, "age": 30, "age_range": "25-34", "birth_country": "Canada",
            "province": "Quebec", "ethnicity": "White", "ethnicity_simplified": "White",
            "gender": gender, "is_student": False, "consent_challenges": True,
            "consent_publications": True, "split": split}


def _video(vid: str, pid: str, q: int, split: str, label: int, n: int) -> dict[str, object]:
    return {"video_id": vid, "participant_id": pid, "visit": "Visite_1", "question": q,
            "release_id": f"Videos/{vid}.mp4", "path": f"Videos/{vid}.mp4", "source": "",
            "duration_s": n / 24, "fps": 24.0, "n_frames": n,
            "has_audio": True, "global_label": label, "split": split, "annotator_id": "A1",
            "transcript": ""}


@pytest.fixture
def tiny_store(tmp_path: Path) -> Path:
    s = tmp_path / "store"
    write_table(s, "participants", pl.DataFrame([_participant("P1", "Female", "train"),
                                                 _participant("P2", "Male", "train"),
                                                 _participant("P3", "Female", "test")]))
    write_table(s, "videos", pl.DataFrame([_video("V1", "P1", 1, "train", 1, 10),
                                           _video("V2", "P1", 2, "train", 0, 10),
                                           _video("V3", "P2", 1, "train", 1, 20),
                                           _video("V4", "P3", 1, "test", 0, 10)]))
    rows = []
    for vid, pid, split, n, pos in (("V1", "P1", "train", 10, range(2, 6)),
                                    ("V2", "P1", "train", 10, range(0)),
                                    ("V3", "P2", "train", 20, range(0, 10)),
                                    ("V4", "P3", "test", 10, range(0))):
        rows += [{"video_id": vid, "participant_id": pid, "frame": f, "label": int(f in pos),
                  "split": split} for f in range(n)]
    write_table(s, "frame_labels", pl.DataFrame(rows))
    seg = {"start_s": 0.0, "end_s": 0.0, "certainty": "high", "annotator_id": "A1"}
    write_table(s, "segments", pl.DataFrame([
        {"video_id": "V1", "participant_id": "P1", "segment": 0, "start_frame": 2,
         "end_frame": 5, **seg},
        {"video_id": "V3", "participant_id": "P2", "segment": 0, "start_frame": 0,
         "end_frame": 4, **seg},
        {"video_id": "V3", "participant_id": "P2", "segment": 1, "start_frame": 5,
         "end_frame": 9, **seg}]))
    cues = [("V1", "P1", 0, "language", "Hedging"), ("V1", "P1", 0, "audio", "Pause"),
            ("V1", "P1", 0, "facial", "Gaze"), ("V3", "P2", 0, "language", "Hedging"),
            ("V3", "P2", 0, "inconsistency", "LA"), ("V3", "P2", 1, "body", "Look away")]
    write_table(s, "cues", pl.DataFrame(cues, orient="row", schema=[
        "video_id", "participant_id", "segment", "modality", "cue"]))
    return s


def test_split_summary_exact(tiny_store: Path) -> None:
    df = stats.split_summary(tiny_store)
    rows = {r["split"]: r for r in df.iter_rows(named=True)}
    assert list(rows) == ["train", "test", "all"]
    t = rows["train"]
    assert (t["participants"], t["videos"], t["ah_videos"], t["frames"], t["ah_frames"],
            t["segments"]) == (2, 3, 2, 40, 14, 3)
    assert t["ah_frame_pct"] == 35.0 and t["ah_video_pct"] == 66.67
    assert t["mean_segment_s"] == 0.19  # (4 + 5 + 5) frames / 3 / 24 fps
    assert (rows["test"]["videos"], rows["test"]["ah_frames"], rows["test"]["segments"]) \
        == (1, 0, 0)
    a = rows["all"]
    assert (a["participants"], a["videos"], a["frames"], a["ah_frames"], a["ah_frame_pct"],
            a["segments"]) == (3, 4, 50, 14, 28.0, 3)


def test_cue_queries_exact(tiny_store: Path) -> None:
    freq = {(r["modality"], r["cue"]): (r["segments"], r["pct_of_segments"])
            for r in stats.cue_frequency(tiny_store).iter_rows(named=True)}
    assert freq == {("language", "Hedging"): (2, 66.67), ("audio", "Pause"): (1, 33.33),
                    ("facial", "Gaze"): (1, 33.33), ("inconsistency", "LA"): (1, 33.33),
                    ("body", "Look away"): (1, 33.33)}
    co = {(r["modality_a"], r["modality_b"]): r["segments"]
          for r in stats.modality_cooccurrence(tiny_store).iter_rows(named=True)}
    assert len(co) == 16
    assert co[("language", "audio")] == co[("audio", "language")] == 1
    assert co[("language", "facial")] == co[("facial", "audio")] == 1
    assert co[("language", "language")] == 2 and co[("body", "body")] == 1
    assert co[("body", "language")] == 0
    per = dict(stats.modalities_per_segment(tiny_store).iter_rows())
    assert per == {0: 0, 1: 2, 2: 0, 3: 1, 4: 0}
    assert stats.inconsistency_codes(tiny_store).rows() == [("LA", 1, 33.33)]


def test_rates_by_question_and_group_exact(tiny_store: Path) -> None:
    q = stats.ah_by_question(tiny_store).select("question", "videos", "ah_videos", "frames",
                                                "ah_frames").rows()
    assert q == [(1, 3, 2, 40, 14), (2, 1, 0, 10, 0)]
    g = stats.ah_by_group(tiny_store, "gender").select("gender", "videos", "ah_videos",
                                                      "frames", "ah_frames",
                                                      "ah_frame_pct").rows()
    assert g == [("Female", 3, 1, 30, 4, 13.33), ("Male", 1, 1, 20, 10, 50.0)]


def test_plots_are_written(tiny_store: Path, tmp_path: Path) -> None:
    paths = plot_stats(stats.all_stats(tiny_store), tmp_path / "plots")
    assert len(paths) == 3
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


def test_stats_agree_with_the_generator_plans(sample_release: Path, sample_config: SampleConfig,
                                              tmp_path: Path) -> None:
    """Counts from the ingested generated release equal counts drawn by the generator."""
    store = tmp_path / "store"
    report = ingest(sample_release, store)
    _, splits, jobs = plan_dataset(sample_config)
    kept = [j for j in jobs if j.pid not in report.excluded]
    summary = {r["split"]: r for r in stats.split_summary(store).iter_rows(named=True)}
    assert summary["all"]["videos"] == len(kept)
    assert summary["all"]["segments"] == sum(len(j.plan.segments) for j in kept)
    assert summary["all"]["ah_videos"] == sum(bool(j.plan.segments) for j in kept)
    assert summary["all"]["frames"] == sum(j.plan.n_frames for j in kept)
    for split in {splits[j.pid] for j in kept}:
        in_split = [j for j in kept if splits[j.pid] == split]
        assert summary[split]["videos"] == len(in_split)
    expected: dict[tuple[str, str], int] = {}
    for j in kept:
        for seg in j.plan.segments:
            for key, cues in seg.cues.items():
                mod = "inconsistency" if key == "inconsistencies" else key
                for cue in set(cues):
                    expected[(mod, cue)] = expected.get((mod, cue), 0) + 1
    got = {(r["modality"], r["cue"]): r["segments"]
           for r in stats.cue_frequency(store).iter_rows(named=True)}
    assert got == expected
    by_q = dict(stats.ah_by_question(store).select("question", "videos").iter_rows())
    for q in range(1, 8):
        assert by_q.get(q, 0) == sum(j.plan.question == q for j in kept)
