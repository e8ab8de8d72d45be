"""Fluency per video frame, from the words and their times, and filled pauses from the
audio.

The transcript is faster-whisper's (the ``words`` extractor's ASR options, the same
defaults; the model is loaded once per process and shared with ``words``, but each
extractor transcribes the video itself). Words are placed on frames by
:func:`extractors.speech.place_on_frames`; what each word is (filler sound, filler
word, repetition, self-correction, syllables) by :mod:`extractors.fluency_text`.

Whisper drops many disfluencies, so filled pauses are also found in the audio: a
voiced stretch (:func:`extractors.pauses.pitch_track`) of at least
``filled_pause_min_s`` (gaps of 30 ms bridged) whose pitch keeps within
``filled_pause_semitones`` (standard deviation), at most half of it inside
transcribed words. These are reported as ``filled_pause``,
never as transcript fillers.

Per decoded frame, each as it happens at the frame and as a count or rate over the
window of ``window_s`` seconds centred on it (events counted by their middle time):

- ``has_word``: a word is placed on the frame;
- ``words_per_s``, ``syllables_per_s`` (window); ``articulation_rate``: syllables per
  second of the word at the frame (0 without);
- ``gap_s``: the length of the silence between words the frame lies in (0 inside a
  word; before the first word from the start, after the last to the end);
  ``pause_before_s``: the pause before the word at the frame; ``pause_fraction``: the
  share of the window outside every word;
- ``filler_sound``, ``filler_word``, ``repetition``, ``correction`` (bool, the word at
  the frame) with ``*_count`` (window);
- ``filled_pause`` (bool) with ``filled_pause_count`` (window), from the audio.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from extractors.audio import audio_coverage
from extractors.base import DecodedVideo, Extractor, register
from extractors.decode import AUDIO_RATE
from extractors.fluency_text import word_events
from extractors.identity import identity, run_option
from extractors.pauses import HOP_S, flat_voiced_runs, pitch_track
from extractors.runtime import Runtime
from extractors.speech import asr_description, asr_model, load_asr, place_on_frames, transcribe
from store.errors import ConfigError
from store.features import ArraySpec

if TYPE_CHECKING:
    from extractors.services import Services

MAX_WORD_OVERLAP = 0.5
EVENTS = ("filler_sound", "filler_word", "repetition", "correction", "filled_pause")


@dataclass(frozen=True)
class FluencyConfig:
    window_s: float = identity(3.0)  # the window around each frame for counts and rates
    filled_pause_min_s: float = identity(0.2)
    filled_pause_semitones: float = identity(2.0)
    asr_model_dir: str = identity("")  # as the words extractor's options
    asr_backend: str = identity("faster-whisper")
    align_model_dir: str = identity("")
    compute_type: str = identity("int8")
    beam_size: int = identity(1)
    vad_filter: bool = identity(True)
    asr_batch_size: int = run_option(0, identity_as=("asr_batched", lambda v: v > 0))
    language: str = identity("")


def filled_pauses(audio: np.ndarray, words: list[dict[str, Any]], cfg: FluencyConfig
                  ) -> list[tuple[float, float]]:
    """(start, end) in seconds of the flat voiced stretches that lie mostly outside
    every word (at most :data:`MAX_WORD_OVERLAP` of them inside one: Whisper's word
    times are coarse and often stretch a word over a filler it dropped)."""
    f0 = pitch_track(audio, AUDIO_RATE)
    out = []
    for s, e in flat_voiced_runs(f0, cfg.filled_pause_min_s, cfg.filled_pause_semitones):
        start, end = s * HOP_S, e * HOP_S
        inside = sum(max(0.0, min(end, w["end"]) - max(start, w["start"])) for w in words)
        if inside <= MAX_WORD_OVERLAP * (end - start):
            out.append((start, end))
    return out


def window_counts(times: np.ndarray, events: np.ndarray, window_s: float,
                  weights: np.ndarray | None = None) -> np.ndarray:
    """Per frame time, the (weighted) number of ``events`` times in the window
    ``[t - window_s / 2, t + window_s / 2)``."""
    order = np.argsort(events)
    ev = events[order]
    w = np.ones(ev.size) if weights is None else weights[order].astype(np.float64)
    csum = np.concatenate([[0.0], np.cumsum(w)])
    lo = np.searchsorted(ev, times - window_s / 2, side="left")
    hi = np.searchsorted(ev, times + window_s / 2, side="left")
    out: np.ndarray = csum[hi] - csum[lo]
    return out


def gaps(times: np.ndarray, words: list[dict[str, Any]], duration: float) -> np.ndarray:
    """Per frame, the length of the silence between words it lies in (0 in a word)."""
    starts = np.array([w["start"] for w in words] + [duration])
    ends = np.array([0.0] + [w["end"] for w in words])
    k = np.searchsorted(starts, times, side="right")  # the first word starting after t
    gap = starts[k.clip(max=starts.size - 1)] - ends[k.clip(max=ends.size - 1)]
    inside = np.zeros(times.size, bool)
    for w in words:
        inside |= (times >= w["start"]) & (times < w["end"])
    out: np.ndarray = np.where(inside, 0.0, np.maximum(gap, 0.0))
    return out


@register
class FluencyExtractor(Extractor):
    """Speech rate, pauses, fillers, repetitions and corrections per frame."""

    name = "fluency"
    Config = FluencyConfig
    config: FluencyConfig

    def __init__(self, config: FluencyConfig | None = None, runtime: Runtime | None = None
                 ) -> None:
        super().__init__(config, runtime)
        if self.config.window_s <= 0:
            raise ConfigError(f"window_s {self.config.window_s} is not positive",
                              expected="a window in seconds, e.g. 3.0")
        self.asr_dir, self._sha = asr_model(self.config)
        self.asr: Any = None  # the faster-whisper model, once loaded
        self._events: dict[str, str] = {}

    def _load(self, services: Services) -> None:
        self.asr, _, self.device = load_asr(self.config, self.runtime)

    def model_files(self) -> tuple[Path, ...]:
        return (self.asr_dir / "model.bin",)

    def model_sha256(self) -> str:
        return self._sha

    def provenance(self) -> dict[str, Any]:
        return {"asr": asr_description(self.config), "asr_model_sha256": self._sha}

    def outputs(self) -> tuple[ArraySpec, ...]:
        rates = (("words_per_s", "words per second in the window"),
                 ("syllables_per_s", "syllables per second in the window"),
                 ("articulation_rate", "syllables per second of the word at the frame"),
                 ("gap_s", "length of the silence between words at the frame, s"),
                 ("pause_before_s", "pause before the word at the frame, s"),
                 ("pause_fraction", "share of the window outside every word"))
        out = [ArraySpec("has_word", "bool", (), "a word is placed on the frame")]
        out += [ArraySpec(n, "float32", (), doc) for n, doc in rates]
        for e in EVENTS:
            what = e.replace("_", " ")
            out += [ArraySpec(e, "bool", (), f"a {what} at the frame"),
                    ArraySpec(f"{e}_count", "float32", (), f"{what}s in the window")]
        return tuple(out)

    def attributes(self, video: DecodedVideo) -> dict[str, Any]:
        """Each word's events and the filled pauses found (JSON, ``fluency``)."""
        return {"fluency": self._events.pop(video.video_id, "{}")}

    def compute(self, video: DecodedVideo) -> dict[str, np.ndarray]:
        n = video.n_frames
        has_audio = audio_coverage(video)[0]
        arrays = {s.name: np.zeros(n, s.dtype) for s in self.outputs()}
        if video.audio is None or video.audio.size < AUDIO_RATE // 10 or not n:
            self._events[video.video_id] = json.dumps({"words": [], "filled_pauses": []})
            return arrays
        duration = video.audio.size / AUDIO_RATE
        services = self.services  # loads the model first
        words = transcribe(self.asr, self.config, video.audio, self.runtime,
                           services.whisperx)["words"]
        ev = word_events(words)
        pauses = filled_pauses(video.audio, words, self.config)
        self._events[video.video_id] = json.dumps({
            "words": [{"word": w["word"], "start": w["start"], "end": w["end"],
                       **{k: int(v[i]) if k == "syllables" else bool(v[i])
                          for k, v in ev.items()}} for i, w in enumerate(words)],
            "filled_pauses": [list(p) for p in pauses]})
        self._fill(arrays, video.timestamps, words, ev, pauses, duration)
        for arr in arrays.values():
            arr[~has_audio] = 0
        return arrays

    def _fill(self, arrays: dict[str, np.ndarray], times: np.ndarray,
              words: list[dict[str, Any]], ev: dict[str, np.ndarray],
              pauses: list[tuple[float, float]], duration: float) -> None:
        w_s, index = self.config.window_s, place_on_frames(times, words)
        at = index >= 0
        starts = np.array([w["start"] for w in words], np.float64)
        ends = np.array([w["end"] for w in words], np.float64)
        mids, length = (starts + ends) / 2, np.maximum(ends - starts, 0.02)
        before = starts - np.concatenate([[0.0], ends[:-1]])
        arrays["has_word"] = at
        arrays["words_per_s"][:] = window_counts(times, mids, w_s) / w_s
        arrays["syllables_per_s"][:] = window_counts(times, mids, w_s, ev["syllables"]) / w_s
        arrays["articulation_rate"][at] = (ev["syllables"] / length)[index[at]]
        arrays["gap_s"][:] = gaps(times, words, duration)
        arrays["pause_before_s"][at] = np.maximum(before, 0.0)[index[at]]
        grid = np.arange(0.0, duration, HOP_S)
        silent = np.ones(grid.size, bool)
        for s, e in zip(starts, ends, strict=True):
            silent[(grid >= s) & (grid < e)] = False
        arrays["pause_fraction"][:] = window_counts(times, grid, w_s, silent) / \
            np.maximum(window_counts(times, grid, w_s), 1)
        ev = {**ev, "filler_word": ev["filler"] & ~ev["filler_sound"]}
        for e in EVENTS[:4]:
            arrays[e][at] = ev[e][index[at]]
            arrays[f"{e}_count"][:] = window_counts(times, mids, w_s, ev[e])
        p_mid = np.array([(s + e) / 2 for s, e in pauses], np.float64)
        for s, e in pauses:
            arrays["filled_pause"] |= (times >= s) & (times < e)
        arrays["filled_pause_count"][:] = window_counts(times, p_mid, w_s)
