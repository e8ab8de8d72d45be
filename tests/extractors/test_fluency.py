"""Fluency: disfluencies read from words, windowed counts and gaps, filled pauses found
in the audio, and the extractor on a generated hesitant answer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bahfs.sample.script import HESITANT, VideoPlan
from extractors.fluency import FluencyConfig, FluencyExtractor, filled_pauses, gaps, window_counts
from extractors.fluency_text import syllables, word_events
from extractors.pipeline import extract_all

Media = dict[str, tuple[Path, VideoPlan | None]]


def _events(text: str) -> dict[str, list[str]]:
    raw = text.split()
    ev = word_events([{"word": w} for w in raw])
    return {k: [w for w, f in zip(raw, ev[k], strict=True) if f]
            for k in ("filler", "filler_sound", "repetition", "correction")}


def test_the_generator_hesitations_read_as_their_cues() -> None:
    texts = {h.text: h.language for h in HESITANT}
    assert _events("Umm, I want to stop, but I do not know.")["filler_sound"] == ["Umm,"]
    uh = _events("Uh, I, I, I tried before, but it did not work.")
    assert uh["filler_sound"] == ["Uh,"] and uh["repetition"] == ["I,", "I"]
    well = _events("Well, you know, it is hard, I mean, I am not sure.")
    assert well["filler"] == ["Well,", "you", "know,", "I", "mean,"]
    assert well["filler_sound"] == []
    assert _events("Maybe next week, or, no, next month.")["correction"] == ["no,"]
    assert _events("Maybe next week or no next month.")["correction"] == ["no"]
    assert _events("I would like to, but I have no time.") == \
        {"filler": [], "filler_sound": [], "repetition": [], "correction": []}
    for text, cues in texts.items():  # every coded filler, repetition, correction is seen
        ev = _events(text)
        assert bool(ev["filler_sound"]) == ("Filler sound" in cues), text
        assert bool(set(ev["filler"]) - set(ev["filler_sound"])) == ("Filler word" in cues)
        assert bool(ev["repetition"]) == ("Repetition" in cues), text
        assert bool(ev["correction"]) == ("Correction" in cues), text
    assert [syllables(w) for w in ("I", "tried", "before,", "Maybe", "month.")] == \
        [1, 1, 2, 2, 1]


def test_window_counts_and_gaps() -> None:
    times = np.arange(10) / 2.0  # 0 .. 4.5 s
    counts = window_counts(times, np.array([1.0, 1.2, 3.0]), 1.0)
    assert counts.tolist() == [0, 0, 2, 2, 0, 0, 1, 1, 0, 0]  # [t - 0.5, t + 0.5)
    words = [{"start": 1.0, "end": 1.6}, {"start": 2.6, "end": 3.0}]
    assert gaps(times, words, 5.0).tolist() == pytest.approx(
        [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0])


def _tone(seconds: float, f0_from: float, f0_to: float) -> np.ndarray:
    t = np.arange(round(seconds * 16_000)) / 16_000
    f0 = np.geomspace(f0_from, f0_to, t.size)
    phase = 2 * np.pi * np.cumsum(f0) / 16_000
    return (0.2 * sum(np.sin(k * phase) / k for k in range(1, 6))).astype(np.float32)


def test_filled_pauses_are_flat_voicing_outside_words() -> None:
    quiet = np.zeros(8_000, np.float32)  # 0.5 s
    audio = np.concatenate([quiet, _tone(0.6, 120, 121), quiet,  # flat: 0.5-1.1 s
                            _tone(0.6, 120, 190), quiet,          # 1.6-2.2 s gliding 8 semitones
                            _tone(0.6, 120, 121), quiet])         # 2.7-3.3 s flat, but a word
    words = [{"word": "so", "start": 2.65, "end": 3.2}]
    found = filled_pauses(audio, words, FluencyConfig())
    assert len(found) == 1
    assert found[0][0] == pytest.approx(0.5, abs=0.05)
    assert found[0][1] == pytest.approx(1.1, abs=0.05)
    assert len(filled_pauses(audio, [], FluencyConfig())) == 2


@pytest.fixture(scope="module")
def fluency() -> FluencyExtractor:
    return FluencyExtractor()


def test_fluency_of_a_hesitant_answer(media: Media, fluency: FluencyExtractor) -> None:
    path, plan = media["speech24"]
    assert plan is not None
    out = extract_all(path, [fluency], video_id="v", participant_id="P")[0]
    a = out.arrays
    events = json.loads(out.attrs["fluency"])
    words = events["words"]
    assert len(words) > 10 and a["has_word"].any()
    mids = np.array([(w["start"] + w["end"]) / 2 for w in words])
    t, w_s = out.timestamps, fluency.config.window_s
    for i in range(0, len(t), 17):  # the rate is the words whose middle is in the window
        inside = ((mids >= t[i] - w_s / 2) & (mids < t[i] + w_s / 2)).sum()
        assert a["words_per_s"][i] == pytest.approx(inside / w_s, abs=1e-5)
    assert (a["gap_s"][a["has_word"]] == 0).all() and a["gap_s"].max() > 0.5
    assert (a["pause_fraction"] >= 0).all() and (a["pause_fraction"] <= 1).all()
    assert ((a["pause_fraction"] > 0.9) == (a["words_per_s"] == 0)).mean() > 0.8
    for name in ("filler_sound", "repetition", "correction"):  # words' events on frames
        n = sum(bool(w[name]) for w in words)
        assert (a[f"{name}_count"].max() > 0) == (n > 0), name
        assert not a[name].any() or n > 0, name
    wider = FluencyExtractor(FluencyConfig(window_s=6.0))
    assert wider.spec().id != fluency.spec().id  # the window is identity
