"""The sample generator: deterministic annotations, real media that agree with labels."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bahfs.sample.generate import SampleConfig, plan_dataset, write_annotations
from bahfs.sample.script import MIN_SECONDS, plan_video
from store.media import probe_video
from store.release import codebook as cb
from store.release.yamlio import load_yaml

ANNOTATION_FILES = (cb.META_YML, cb.ANNOTATIONS_YAML, cb.VIDEO_LABELS_CSV)


def _annotation_bytes(root: Path) -> dict[str, bytes]:
    files = [root / f for f in ANNOTATION_FILES]
    for d in (cb.SPLIT_DIR, cb.SPLIT_FRAMES_DIR, cb.TRANSCRIPTION_DIR):
        files += sorted(p for p in (root / d).rglob("*.*") if p.is_file())
    return {str(f.relative_to(root)): f.read_bytes() for f in files}


def test_same_seed_same_annotation_bytes(tmp_path: Path) -> None:
    cfg = SampleConfig(participants=5, seed=11)
    write_annotations(tmp_path / "a", cfg)
    write_annotations(tmp_path / "b", cfg)
    a, b = _annotation_bytes(tmp_path / "a"), _annotation_bytes(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) > 10
    assert a == b
    write_annotations(tmp_path / "c", SampleConfig(participants=5, seed=12))
    assert _annotation_bytes(tmp_path / "c")[cb.ANNOTATIONS_YAML] != a[cb.ANNOTATIONS_YAML]


@pytest.mark.parametrize("seed", range(30))
def test_plans_respect_duration_and_ah_request(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for ah in (True, False):
        plan = plan_video(rng, 1 + seed % 7, ah=ah, max_seconds=MIN_SECONDS)
        assert plan.duration_s <= MIN_SECONDS
        assert bool(plan.segments) is ah
        for seg in plan.segments:  # every segment holds a hesitant utterance
            assert any(u.hesitant and seg.start_s <= u.start_s and u.end_s <= seg.end_s
                       for u in plan.utterances)
        turns = [e for e in plan.face_events if e.kind == "turn"]
        looks_away = [s for s in plan.segments if "Look away" in s.cues["body"]]
        assert len(turns) == len(looks_away)


def test_some_participants_decline_consent() -> None:
    meta, splits, _ = plan_dataset(SampleConfig(participants=20, seed=0))
    declined = [p for p, m in meta.items()
                if m["Use in challenges"] == "No" or m["Use in publications"] == "No"]
    assert 0 < len(declined) < 20
    assert set(splits.values()) == {"train", "val", "test"}


def test_generated_videos_are_real_h264_aac_matching_annotations(sample_release: Path) -> None:
    anns = load_yaml(sample_release / cb.ANNOTATIONS_YAML)
    truth = json.loads((sample_release / "bahfs_truth.json").read_text())
    assert len(anns) >= 4
    for rel, ann in anns.items():
        path = sample_release / rel  # the release's video id is its path from the root
        info = probe_video(path)
        assert info.fps == 24.0 and info.has_audio
        assert info.n_frames == len(ann["frame_annotation"]) == truth[rel]["n_frames"]
        assert 3.0 <= info.duration_s <= 14.0
        codecs = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0",
             str(path)], capture_output=True, text=True, check=True).stdout.split()
        assert codecs == ["h264", "aac"]
        # labels agree with the hesitant speech the video contains
        labels = np.array([lab for _, lab in ann["frame_annotation"]])
        for utt in truth[rel]["utterances"]:
            mid = int((utt["start_s"] + utt["end_s"]) / 2 * 24)
            assert labels[mid] == int(utt["hesitant"]), (rel, utt)


def test_face_truth_follows_face_events(sample_release: Path) -> None:
    truth = json.loads((sample_release / "bahfs_truth.json").read_text())
    absent_or_turned = 0
    for info in truth.values():
        has_face = np.zeros(info["n_frames"], bool)
        for s, e in info["face_runs"]:
            has_face[s:e] = True
        for ev in info["face_events"]:
            mid = int((ev["start_s"] + ev["end_s"]) / 2 * info["fps"])
            if ev["kind"] in ("absent", "turn"):
                assert not has_face[mid]
                absent_or_turned += 1
        assert has_face.mean() > 0.3
    assert absent_or_turned > 0


def test_speech_is_loud_where_utterances_are(sample_release: Path) -> None:
    truth = json.loads((sample_release / "bahfs_truth.json").read_text())
    rel, info = next(iter(truth.items()))
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(sample_release / rel), "-ac", "1",
         "-ar", "16000", "-f", "s16le", "-"], capture_output=True, check=True).stdout
    audio = np.frombuffer(pcm, np.int16).astype(np.float32) / 32768
    utt = info["utterances"][0]
    speech = audio[int(utt["start_s"] * 16000):int(utt["end_s"] * 16000)]
    silence = audio[: int(min(0.35, utt["start_s"]) * 16000)]
    assert np.sqrt(np.mean(speech**2)) > 10 * np.sqrt(np.mean(silence**2))
