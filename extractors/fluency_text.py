"""Disfluencies in a timed transcript, word by word: filler sounds, filler words,
repetitions, self-corrections, and syllable counts.

The rules, on Whisper's words as written (punctuation attached, ``"Well,"``):

- **filler sound**: um, umm, uh, uhm, er, erm, ah, eh, hm, hmm, mm (any number of
  repeated letters: ``"Ummm"``);
- **filler word**: the phrases "you know", "I mean", "kind of", "sort of" (both
  words), and "well" or "like" written with a comma after it (``"Well,"``, ``"like,"``:
  not "I would like to");
- **repetition**: a word (not a filler sound) equal to the word before it
  (``"I, I, I"``: the second and third), or a pair of words equal to the pair before
  them (``"I want, I want"``);
- **self-correction**: "no", "sorry", "rather" or "actually" after a comma inside a
  sentence (``"next week, or, no, next month"``), "no" right after "or" (Whisper
  often writes that one without its commas: ``"next week or no next month"``), and a
  word cut off (written ending in ``-``);
- **syllables**: the groups of vowels (a, e, i, o, u, y) in the word, less a silent
  final e (not in -le, -ee, or after a group ending in y: "maybe"), at least one.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

_FILLER_SOUND = re.compile(r"^(u+m+|u+h+m*|e+r+m*|a+h+|e+h+|h+m+|m{2,})$")
_PHRASES = (("you", "know"), ("i", "mean"), ("kind", "of"), ("sort", "of"))
_COMMA_FILLERS = {"well", "like"}
_MARKERS = {"no", "sorry", "rather", "actually"}
_VOWELS = re.compile(r"[aeiouy]+")


def norm(word: str) -> str:
    """Lower case, letters, digits and apostrophes only."""
    return re.sub(r"[^a-z0-9']", "", word.lower())


def is_filler_sound(word: str) -> bool:
    return bool(_FILLER_SOUND.match(norm(word)))


def syllables(word: str) -> int:
    w = norm(word)
    groups = _VOWELS.findall(w)
    n = len(groups)
    if w.endswith("e") and not w.endswith(("le", "ee")) and n > 1 and \
            not groups[-2].endswith("y"):
        n -= 1
    return max(1, n)


def filler_words(raw: list[str]) -> np.ndarray:
    """Per word, whether it is (part of) a filler word or phrase."""
    words = [norm(w) for w in raw]
    out = np.zeros(len(words), bool)
    for i, w in enumerate(words):
        if w in _COMMA_FILLERS and raw[i].rstrip().endswith(","):
            out[i] = True
        if i and (words[i - 1], w) in _PHRASES:
            out[i - 1] = out[i] = True
    return out


def repetitions(raw: list[str]) -> np.ndarray:
    """Per word, whether it repeats the word (or the pair of words) just before it."""
    words = [norm(w) for w in raw]
    out = np.zeros(len(words), bool)
    for i, w in enumerate(words):
        if not w or is_filler_sound(w):
            continue
        if i >= 1 and words[i - 1] == w:
            out[i] = True
        if i >= 3 and (words[i - 3], words[i - 2]) == (words[i - 1], w):
            out[i - 1] = out[i] = True
    return out


def corrections(raw: list[str]) -> np.ndarray:
    """Per word, whether it marks a self-correction (or is a cut-off word)."""
    out = np.zeros(len(raw), bool)
    for i, w in enumerate(raw):
        after_comma = i > 0 and raw[i - 1].rstrip().endswith(",")
        or_no = i > 0 and norm(raw[i - 1]) == "or" and norm(w) == "no"
        out[i] = (after_comma and norm(w) in _MARKERS) or or_no or w.rstrip().endswith("-")
    return out


def word_events(words: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per word of a timed transcript: ``filler`` (sound or word), ``filler_sound``,
    ``repetition``, ``correction`` (bool) and ``syllables`` (int)."""
    raw = [str(w["word"]) for w in words]
    sounds = np.array([is_filler_sound(w) for w in raw], bool)
    return {"filler": sounds | filler_words(raw), "filler_sound": sounds,
            "repetition": repetitions(raw), "correction": corrections(raw),
            "syllables": np.array([syllables(w) for w in raw], np.int64)}
