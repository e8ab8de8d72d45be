"""Every variant of the release in circulation reads, and reads to the same tables."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from bahfs.cli import app
from bahfs.sample.generate import SampleConfig, plan_dataset, write_annotations
from bahfs.sample.release_files import VARIANTS, video_path, whisper_chunks
from store.errors import DatasetLayoutError, PathEscapeError
from store.ingest import ingest
from store.release import codebook as cb
from store.release.ids import parse_video_ref
from store.release.reader import read_release
from store.release.transcripts import rebuild_timeline
from store.tables import read_table

LONG = SampleConfig(participants=4, seed=21, max_questions=3, max_seconds=70.0)
HERE = Path("release.yml")


@pytest.mark.parametrize(("ref", "vid", "name"), [
    ("Videos/82553/Visite_1/82553_Question_1_2024-10-02 15-46-17_Video.mp4",
     "82553__Visite_1__Q1", "82553_Question_1_2024-10-02 15-46-17_Video.mp4"),
    ("82553/Visite 1/82553_Question_1_2024-10-02 15-46-17_Video.mp4",
     "82553__Visite_1__Q1", "82553_Question_1_2024-10-02 15-46-17_Video.mp4"),
    ("Videos/82593/Visite_1/82593_Question_4_2024-10-02 16-28-38_Video-DESKTOP-NQ55E0P.mp4",
     "82593__Visite_1__Q4", "82593_Question_4_2024-10-02 16-28-38_Video-DESKTOP-NQ55E0P.mp4"),
    ("Videos/82557/Visite_1/82557 Question 5 2024-08-22 14-48-26 Video.mp4",
     "82557__Visite_1__Q5", "82557 Question 5 2024-08-22 14-48-26 Video.mp4"),
    ("Videos/82711/Visite_1/82711_question_7_2024-11-18_16-12-03_video.mp4",
     "82711__Visite_1__Q7", "82711_question_7_2024-11-18_16-12-03_video.mp4"),
])
def test_every_spelling_of_a_video_id(ref: str, vid: str, name: str) -> None:
    key = parse_video_ref(ref, path=HERE)
    assert (key.video_id, key.name, key.ref) == (vid, name, ref)
    assert "/" not in key.video_id and " " not in key.video_id


@pytest.mark.parametrize("bad", [
    "Videos/82553/Visite_1/82554_Question_1_2024-10-02 15-46-17_Video.mp4",  # other pid
    "Videos/82553/Visite_1/82553_Question_8_2024-10-02 15-46-17_Video.mp4",  # question 8
    "Videos/82553/Visite_1/82553_Question_1_2024-10-02 15-46-17.mp4",  # no "Video"
    "Videos/82553/Session_1/82553_Question_1_2024-10-02 15-46-17_Video.mp4",  # visit
    "Videos/82553/82553_Question_1_2024-10-02 15-46-17_Video.mp4",  # no visit folder
])
def test_ids_that_fit_no_variant_fail_naming_the_form(bad: str) -> None:
    with pytest.raises(DatasetLayoutError, match="does not follow the release naming") as info:
        parse_video_ref(bad, path=HERE)
    assert bad in str(info.value) and "Visite_<n>" in str(info.value)
    with pytest.raises(PathEscapeError):
        parse_video_ref("Videos/../../etc/82553_Question_1_x_Video.mp4", path=HERE)


def test_timeline_rebuild_restarts_and_open_ends() -> None:
    # window 0: 0.5-27.8, then Whisper's next window starts at 27.8 and times restart
    raw = [(0.5, 10.0), (11.0, 27.8), (0.4, 5.0), (6.0, None), (8.0, 17.8), (0.3, None)]
    out = rebuild_timeline(raw)
    assert [w for _, _, w in out] == [0, 0, 1, 1, 1, 2]
    assert [round(s, 6) for s, _, _ in out] == [0.5, 11.0, 28.2, 33.8, 35.8, 45.9]
    assert out[3][1] == pytest.approx(35.8)  # a missing end inside: the next start
    assert out[-1][1] is None  # the last one: ingest fills it with the video's duration
    starts = [s for s, _, _ in out]
    assert starts == sorted(starts)
    assert rebuild_timeline([(0.0, 1.0), (0.5, 1.5)]) == [(0.0, 1.0, 0), (0.5, 1.5, 0)]
    # a window with one long chunk: the restart shows against its end, not its start
    assert rebuild_timeline([(0.0, 29.5), (0.2, 5.0)]) == [(0.0, 29.5, 0), (29.7, 34.5, 1)]


def test_generated_transcripts_restart_and_are_rebuilt(tmp_path: Path) -> None:
    """Videos over 30 s: chunk times in the files restart; the table is one timeline."""
    write_annotations(tmp_path, LONG)
    _, _, jobs = plan_dataset(LONG)
    restarted = [j for j in jobs if any(
        b["timestamp"][0] < a["timestamp"][0] - 1
        for a, b in zip(whisper_chunks(j, False), whisper_chunks(j, False)[1:], strict=False))]
    assert restarted, "the generator wrote no video longer than one Whisper window"
    rel = read_release(tmp_path)
    by_video = {vid: df.sort("chunk") for (vid,), df in rel.transcripts.group_by("video_id")}
    for job in jobs:
        key = parse_video_ref(video_path(job, "release"), path=HERE)
        got = by_video[key.video_id]
        truth = [(u.start_s, u.end_s) for u in job.plan.utterances]
        assert got["start_s"].to_list() == pytest.approx([s for s, _ in truth], abs=0.03)
        assert got["end_s"].to_list()[:-1] == pytest.approx([e for _, e in truth][:-1],
                                                            abs=0.03)
    assert rel.transcripts["window"].max() >= 1  # type: ignore[operator]


def _variant(tmp_path: Path, sample_release: Path, cfg: SampleConfig, variant: str) -> Path:
    """``cfg``'s release in ``variant``, its video files hard-linked from the session
    sample (a file symlinked out of the release would be refused)."""
    root = tmp_path / variant
    jobs = write_annotations(root, cfg.model_copy(update={"variant": variant}))
    for job in jobs:
        dst = root / video_path(job, variant)  # type: ignore[arg-type]
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.hardlink_to(sample_release / video_path(job, "release"))
    return root


FILES = {"release": cb.ANNOTATIONS_YAML, "official": cb.OFFICIAL_ANNOTATIONS_YAML,
         "challenge-2025": cb.CHALLENGE_ANNOTATIONS_YAML}
COMMON = {"videos": ["video_id", "participant_id", "visit", "question", "global_label",
                     "split", "n_frames", "fps"],
          "frame_labels": None, "splits": None, "participants": None, "exclusions": None,
          "segments": ["video_id", "segment", "start_frame", "end_frame", "start_s", "end_s"]}


def test_every_variant_of_one_seed_ingests_to_the_same_tables(
        sample_release: Path, sample_config: SampleConfig, tmp_path: Path) -> None:
    stores = {}
    for variant in VARIANTS:
        root = _variant(tmp_path, sample_release, sample_config, variant)
        stores[variant] = tmp_path / f"store-{variant}"
        report = ingest(root, stores[variant])
        assert not report.quarantined, (variant, report.quarantined)
        assert report.notes[0].startswith("variant: ") and FILES[variant] in report.notes[0]
    base = stores["release"]
    assert read_table(base, "videos").height > 0
    for variant, store in stores.items():
        for table, cols in COMMON.items():
            want = read_table(base, table).sort(pl.all())
            got = read_table(store, table).sort(pl.all())
            if cols:
                want, got = want.select(cols).sort(cols), got.select(cols).sort(cols)
            assert got.equals(want), (variant, table)
    # the release and the official code's names carry the same cues and transcripts
    for table in ("cues", "transcripts", "segments"):
        assert read_table(stores["official"], table).sort(pl.all()).equals(
            read_table(base, table).sort(pl.all())), table
    # the release's own spelling is kept; the file is found where the variant keeps it
    ch = read_table(stores["challenge-2025"], "videos")
    assert all(r.startswith("8") and "/Visite 1/" in r for r in ch["release_id"])
    assert all(p.startswith("Videos/") for p in ch["path"])
    transcripts = read_table(base, "transcripts")
    assert transcripts.height and transcripts["end_s"].null_count() == 0
    videos = read_table(base, "videos").select("video_id", "duration_s")
    last = transcripts.sort("chunk").group_by("video_id").last().join(videos, on="video_id")
    assert (last["end_s"] <= last["duration_s"] + 1e-9).all()


def test_unknown_keys_are_reported_not_dropped(tmp_path: Path) -> None:
    write_annotations(tmp_path, LONG)
    for name, field in ((cb.ANNOTATIONS_YAML, "reviewer_note"), (cb.META_YML, "Handedness")):
        path = tmp_path / name
        data = yaml.safe_load(path.read_text())
        next(iter(data.values()))[field] = "x"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    rel = read_release(tmp_path)
    assert rel.unknown_keys == {cb.META_YML: ["Handedness"],
                                cb.ANNOTATIONS_YAML: ["reviewer_note"]}
    assert any("reviewer_note" in n for n in rel.notes)


def withhold_test_labels(root: Path) -> list[str]:
    """Hand the test split out as the organisers do: labels empty, no annotations."""
    test_file = root / cb.SPLIT_DIR / "test.txt"
    lines = test_file.read_text().splitlines()
    refs = [ln.split(",", 2)[0] for ln in lines]
    test_file.write_text("\n".join(f"{r},,{ln.split(',', 2)[2]}" for r, ln in
                                   zip(refs, lines, strict=True)) + "\n")
    ann = root / cb.ANNOTATIONS_YAML
    data = yaml.safe_load(ann.read_text())
    ann.write_text(yaml.safe_dump({k: v for k, v in data.items() if k not in refs},
                                  sort_keys=False))
    csv = root / cb.VIDEO_LABELS_CSV
    csv.write_text("\n".join(ln for ln in csv.read_text().splitlines()
                             if ln.rsplit(",", 1)[0] not in refs) + "\n")
    return refs


def test_withheld_test_labels_are_unlabelled_not_guessed(tmp_path: Path) -> None:
    write_annotations(tmp_path, LONG)
    refs = withhold_test_labels(tmp_path)
    rel = read_release(tmp_path)
    assert sorted(rel.unlabelled["release_id"]) == sorted(refs)
    assert rel.unlabelled["label"].null_count() == len(refs)
    held = rel.videos.filter(pl.col("release_id").is_in(refs))
    assert held.height == len(refs) and held["global_label"].null_count() == len(refs)
    assert set(held["split"]) == {"test"} and held["transcript"].null_count() == 0
    assert not set(rel.frame_labels["video_id"]) & set(held["video_id"])
    assert any("withheld" in n for n in rel.notes)


def test_two_annotation_files_is_an_error(tmp_path: Path) -> None:
    write_annotations(tmp_path, LONG)
    (tmp_path / cb.CHALLENGE_ANNOTATIONS_YAML).write_text("{}")
    with pytest.raises(DatasetLayoutError, match="several annotation files") as info:
        read_release(tmp_path)
    assert cb.ANNOTATIONS_YAML in str(info.value)


def test_check_release_plans_without_writing(tmp_path: Path) -> None:
    root = tmp_path / "rel"
    write_annotations(root, LONG.model_copy(update={"variant": "challenge-2025"}))
    before = sorted(p for p in root.rglob("*"))
    runner = CliRunner()
    ok = runner.invoke(app, ["check-release", str(root)])
    assert ok.exit_code == 0, ok.output
    assert "2025 challenge" in ok.output and "ingest would succeed" in ok.output
    assert "916618" in ok.output and "declined use in" in ok.output
    assert sorted(p for p in root.rglob("*")) == before  # nothing written
    # two bad entries: both reported, one line each, exit 1
    path = root / cb.CHALLENGE_ANNOTATIONS_YAML
    data = yaml.safe_load(path.read_text())
    first, second = list(data)[:2]
    data[first]["global_ah"] = 1 - data[first]["global_ah"]
    data[second]["frame_annotation"][0][0] = "frame-0.jpg"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    bad = runner.invoke(app, ["check-release", str(root)])
    assert bad.exit_code == 1
    assert "problems: 2" in bad.output and first in bad.output and second in bad.output
