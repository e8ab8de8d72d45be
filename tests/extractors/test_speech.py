"""Speech: transcript of synthesised speech, word times, words placed on their frames."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from bahfs.sample.script import VideoPlan
from extractors.models import models_dir
from extractors.pipeline import extract_all
from extractors.runtime import session
from extractors.speech import SpeechExtractor, interpolate_times, place_on_frames, words_table

Media = dict[str, tuple[Path, VideoPlan | None]]


@pytest.fixture(scope="module")
def speech() -> SpeechExtractor:
    return SpeechExtractor()


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def test_onnx_word_model_matches_torch() -> None:
    ref = np.load(models_dir() / "minilm_tokens.reference.npz")
    sess = session((models_dir() / "minilm_tokens.onnx").read_bytes())
    out = sess.run(["tokens"], {"input_ids": ref["input_ids"],
                                "attention_mask": ref["attention_mask"]})[0]
    m = ref["attention_mask"].astype(bool)
    np.testing.assert_allclose(out[m], ref["tokens"][m], atol=1e-4)


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


def test_video_without_audio_gives_no_words(media: Media, speech: SpeechExtractor) -> None:
    out = extract_all(media["silent"][0], [speech])[0]
    assert not out.arrays["has_word"].any()
    assert json.loads(out.attrs["transcript"])["words"] == []
