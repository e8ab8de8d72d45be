"""Speech: transcript of synthesised speech, word times, words placed on their frames."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bahfs.sample.script import VideoPlan
from extractors.pipeline import extract_all
from extractors.speech import (
    SpeechConfig,
    SpeechExtractor,
    interpolate_times,
    place_on_frames,
    words_table,
)

Media = dict[str, tuple[Path, VideoPlan | None]]


@pytest.fixture(scope="module")
def speech() -> SpeechExtractor:
    return SpeechExtractor()


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def test_interpolation_of_untimed_words() -> None:
    words = [{"word": "a", "start": 1.0, "end": 1.5, "probability": 1.0},
             {"word": "42", "start": None, "end": None, "probability": 0.5},
             {"word": "b", "start": 3.0, "end": 3.5, "probability": 1.0}]
    out = interpolate_times(words, 10.0)
    assert out[1]["interpolated"] and not out[0]["interpolated"]
    assert 1.0 < out[1]["start"] <= out[1]["end"] <= 3.5


def test_words_sit_on_the_frames_they_span() -> None:
    times = np.arange(48) / 24.0
    idx = place_on_frames(times, [{"start": 0.5, "end": 1.0}, {"start": 1.2, "end": 1.3}])
    assert set(np.flatnonzero(idx == 0)) == set(range(12, 24))
    assert set(np.flatnonzero(idx == 1)) == {29, 30, 31}  # 1.2083.., 1.25, 1.2916..
    assert (idx[:12] == -1).all()


def test_a_word_between_frames_gets_the_frame_nearest_its_middle() -> None:
    times = np.arange(10) / 5.0  # 0, 0.2, 0.4, ...
    words = [{"start": 0.0, "end": 0.35},   # frames 0, 1
             {"start": 0.42, "end": 0.5},   # none inside: nearest its middle, 0.46 -> 2 (0.4)
             {"start": 0.9, "end": 0.9},    # zero-length at 0.9: frame 4 (0.8) on the tie
             {"start": 1.21, "end": 1.3},   # nearest is 6 (1.2), inside the next word
             {"start": 1.15, "end": 1.21},  # frame 6
             {"start": 1.62, "end": 1.64},  # frame 8 (1.6) ...
             {"start": 1.57, "end": 1.59}]  # ... already given to the word before
    idx = place_on_frames(times, words)
    assert idx.tolist() == [0, 0, 1, -1, 2, -1, 4, -1, 5, -1]
    assert set(range(len(words))) - set(idx.tolist()) == {3, 6}


def test_transcript_of_synthesised_speech(media: Media, speech: SpeechExtractor) -> None:
    path, plan = media["speech24"]
    assert plan is not None
    out = extract_all(path, [speech], video_id="v1", participant_id="P1")[0]
    transcript = json.loads(out.attrs["transcript"])
    assert transcript["language"] == "en"
    said = {w for u in plan.utterances for w in _words(u.text)}
    heard = set(_words(transcript["text"]))
    assert len(said & heard) >= 0.6 * len(said), (said, heard)
    fps = plan.fps
    idx = out.arrays["word_index"]
    for i, w in enumerate(transcript["words"]):  # within one frame of the word's times
        frames = np.flatnonzero(idx == i)
        if frames.size:
            assert frames[0] / fps >= w["start"] - 1 / fps
            assert frames[-1] / fps <= w["end"] + 1 / fps
    # every recognised word lies inside a planned utterance slot (speech is only there)
    for w in transcript["words"]:
        mid = (w["start"] + w["end"]) / 2
        assert any(u.start_s - 0.5 <= mid <= u.end_s + 0.5 for u in plan.utterances), w
    has = out.arrays["has_word"]
    assert has.any() and not out.arrays["word_embedding"][~has].any()
    assert out.arrays["word_embedding"][has].any(axis=1).all()
    table = words_table(out)
    assert table.height == len(transcript["words"]) and table["video_id"][0] == "v1"
    for row in table.iter_rows(named=True):  # the table's frames are the arrays' frames
        span = np.flatnonzero(idx == row["word_index"])
        want = (int(span[0]), int(span[-1])) if span.size else (None, None)
        assert (row["first_frame"], row["last_frame"]) == want, row


def test_video_without_audio_gives_no_words(media: Media, speech: SpeechExtractor) -> None:
    out = extract_all(media["silent"][0], [speech])[0]
    assert not out.arrays["has_word"].any() and not out.arrays["word_embedding"].any()
    transcript = json.loads(out.attrs["transcript"])
    assert transcript["words"] == [] and transcript["audio"] == "no audio stream"


SENTENCES = ("I am not sure I want to stop smoking right now.",
             "Maybe next week, or maybe next month, I do not really know.",
             "My doctor told me to exercise more, and I tried, but it is hard.",
             "Honestly, part of me wants to change and part of me does not.",
             "I think about it every morning when I wake up and look outside.")


@pytest.fixture(scope="module")
def long_talk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About two and a half minutes of espeak-ng speech on a tiny video (5 fps)."""
    import subprocess

    d = tmp_path_factory.mktemp("long")
    text = " ".join(SENTENCES[i % len(SENTENCES)] for i in range(36))
    subprocess.run(["espeak-ng", "-s", "165", "-w", str(d / "talk.wav"), text], check=True)
    out = d / "talk.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=gray:s=64x48:r=5",
                    "-i", str(d / "talk.wav"), "-shortest", "-c:v", "libx264", "-c:a", "aac",
                    str(out)], check=True)
    return out


@pytest.mark.slow
def test_minutes_of_speech_give_every_word_a_vector(
        long_talk: Path, speech: SpeechExtractor,
        record_property: Callable[[str, object], None]) -> None:
    out = extract_all(long_talk, [speech], video_id="long", participant_id="P")[0]
    times = out.timestamps
    assert times[-1] > 120  # minutes, not seconds
    words = json.loads(out.attrs["transcript"])["words"]
    assert len(words) > 300  # far beyond one 256-token window
    has, emb, idx = out.arrays["has_word"], out.arrays["word_embedding"], out.arrays["word_index"]
    assert has.sum() > 0.5 * has.size
    assert emb[has].any(axis=1).all()  # never a zero vector where a word is spoken
    spanned = np.zeros(times.size, bool)
    for w in words:
        spanned |= (times >= w["start"]) & (times < w["end"])
    lost = [i for i, w in enumerate(words) if w["first_frame"] is None]
    period = float(np.median(np.diff(times)))
    for i in lost:  # the only words left without a frame share one with another word
        w = words[i]
        frame = int(np.argmin(np.abs(times - (w["start"] + w["end"]) / 2)))
        assert idx[frame] not in (-1, i), (i, w)
        assert w["end"] - w["start"] < period, (i, w)  # so the word fits between frames
    record_property("words_without_a_frame", f"{len(lost)} of {len(words)}")
    print(f"words without a frame: {len(lost)} of {len(words)}")
    # Measured 27 of 452 (6 %) here; frames span 0.2 s (5 fps) and a word is lost only
    # when it is shorter than that and sits beside a word owning its nearest frame.
    # Whisper's word times move with the CPU (the old rule lost 40 of 452 here and 56
    # of 461 on another machine, a spread of about 4 % of the words): 10 % is that margin.
    assert len(lost) <= 0.10 * len(words)


@pytest.mark.slow
def test_multilingual_whisper_by_path_detects_the_language(media: Media) -> None:
    from extractors.convert.whisper_parts import WHISPER_BASE_SHA256
    from extractors.models import models_dir

    path, plan = media["speech24"]
    assert plan is not None
    base = SpeechExtractor(SpeechConfig(asr_model_dir=str(models_dir() / "whisper-base-ct2")))
    assert base.spec().extra["asr_model_sha256"] == WHISPER_BASE_SHA256
    out = extract_all(path, [base])[0]
    transcript = json.loads(out.attrs["transcript"])
    assert transcript["language"] == "en" and 0.5 < transcript["language_probability"] < 1.0
    said = {w for u in plan.utterances for w in _words(u.text)}
    assert len(said & set(_words(transcript["text"]))) >= 0.6 * len(said)


def test_a_folder_that_is_not_whisper_fails_naming_it(tmp_path: Path) -> None:
    from extractors.models import load_whisper
    from store.errors import ModelError

    (tmp_path / "model.bin").write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"missing config\.json"):
        load_whisper(str(tmp_path), "int8")


@pytest.mark.slow
def test_batched_whisper_gives_the_same_words(media: Media, speech: SpeechExtractor) -> None:
    path, plan = media["speech24"]
    assert plan is not None
    batched = SpeechExtractor(SpeechConfig(asr_batch_size=4))
    a = json.loads(extract_all(path, [speech])[0].attrs["transcript"])
    b = json.loads(extract_all(path, [batched])[0].attrs["transcript"])
    one, two = set(_words(a["text"])), set(_words(b["text"]))
    assert len(one & two) >= 0.8 * max(len(one), len(two)), (one, two)
    duration = plan.n_frames / plan.fps
    assert all(0 <= w["start"] <= w["end"] <= duration + 0.5 for w in b["words"])
    assert batched.spec().id != speech.spec().id  # another option, another feature set
