"""Plan one sample video: what is said when, where A/H is, what the face does.

Pure and deterministic: a plan depends only on the random generator handed in,
never on what espeak-ng or ffmpeg produce, so annotations are byte-identical for
the same seed on any machine. Speech is later fitted into the planned slots.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Fluent answer sentences, per question (index 0..6).
FLUENT: tuple[tuple[str, ...], ...] = (
    ("I would like to exercise more often.", "I want to eat more vegetables.",
     "I would like to sleep more every night."),
    ("Because I want to feel healthier.", "My doctor told me it is important.",
     "I want to have more energy for my family."),
    ("My work takes a lot of my time.", "It is hard when I am tired in the evening.",
     "Old habits are difficult to break."),
    ("I am quite confident that I can do it.", "I think I can manage it this time.",
     "I am confident, I have a good plan."),
    ("I tried running last summer.", "I tried an application on my phone.",
     "I joined a gym with a friend."),
    ("Support from my friends would help me.", "A simple weekly plan would help.",
     "Cooking at home would help a lot."),
    ("Next week I will walk every morning.", "I will prepare my meals on Sunday.",
     "I will go to bed at ten every night."),
)


@dataclass(frozen=True)
class Hesitation:
    """A hesitant utterance and the cues an annotator would code for it."""

    text: str
    language: tuple[str, ...]
    audio: tuple[str, ...] = ()
    inconsistency: tuple[str, ...] = ()


HESITANT: tuple[Hesitation, ...] = (
    Hesitation("Umm, I want to stop, but I do not know.", ("Filler sound", "Opp", "Hedging")),
    Hesitation("I guess maybe I could try.", ("Hedging",)),
    Hesitation("Uh, I, I, I tried before, but it did not work.",
               ("Filler sound", "Repetition", "Fail"), ("Stuttering",)),
    Hesitation("Well, you know, it is hard, I mean, I am not sure.",
               ("Filler word", "Hedging", "Negative")),
    Hesitation("I would like to, but I have no time.", ("Excuse", "Opp")),
    Hesitation("Maybe next week, or, no, next month.", ("Correction", "Hedging")),
    Hesitation("I am sure I can do it, umm, I think.", ("Positive", "Filler sound", "Hedging"),
               (), ("LA",)),
)


@dataclass(frozen=True)
class Utterance:
    """A spoken sentence in a planned slot [start_s, end_s)."""

    text: str
    start_s: float
    end_s: float
    wpm: int
    hesitant: bool


@dataclass(frozen=True)
class FaceEvent:
    """A stretch where the face moves, zooms, turns away, or leaves the frame."""

    kind: str  # "move" | "zoom" | "turn" | "absent"
    start_s: float
    end_s: float
    amount: float  # pixels for move, scale factor for zoom, yaw degrees for turn


@dataclass(frozen=True)
class SegmentPlan:
    """An A/H segment with the cues it carries (keys as in the release)."""

    start_s: float
    end_s: float
    certainty: str
    cues: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class VideoPlan:
    """Everything the renderer and annotator need for one video."""

    question: int
    fps: float
    duration_s: float
    utterances: tuple[Utterance, ...]
    segments: tuple[SegmentPlan, ...]
    face_events: tuple[FaceEvent, ...]
    pitch: int
    voice: str

    @property
    def n_frames(self) -> int:
        return round(self.duration_s * self.fps)

    def frame_of(self, t: float) -> int:
        """Index of the frame shown at time ``t`` (clamped to the video)."""
        return min(max(int(t * self.fps), 0), self.n_frames - 1)


def _slot(text: str, wpm: int) -> float:
    """Generous speaking time for ``text`` at ``wpm`` (speech is fitted into it)."""
    words = len(text.split())
    return round(words * 60.0 / wpm * 1.25 + 0.4, 2)


_MAX_HES_SLOT = max(_slot(h.text, 105) for h in HESITANT) + 1.4
MIN_SECONDS = 14.0  # the longest hesitation, its pause and lead-in fit


def plan_video(rng: np.random.Generator, question: int, *, ah: bool, fps: float = 24.0,
               max_seconds: float = 30.0, voice: str = "en-us", pitch: int = 50) -> VideoPlan:
    """Plan the answer to ``question`` (1..7); ``ah`` asks for at least one A/H segment."""
    t = round(float(rng.uniform(0.4, 1.0)), 2)
    utterances: list[Utterance] = []
    segments: list[SegmentPlan] = []
    events: list[FaceEvent] = []
    n_utt = int(rng.integers(2, 5))
    long_answers = max_seconds > 30.0  # answers may run over one Whisper window
    if long_answers:
        n_utt += int(rng.integers(0, int((max_seconds - 30.0) // 3.0) + 1))
    hes_at = set(rng.choice(n_utt, size=int(rng.integers(1, 3)), replace=False).tolist()) \
        if ah else set()
    budget = max_seconds - 1.0
    fluent = [FLUENT[question - 1][int(k)] for k in rng.permutation(len(FLUENT[question - 1]))]
    for i in range(n_utt):
        # an A/H video gets its hesitation even when the budget runs out early
        must = ah and not segments and (i == n_utt - 1 or t + 2 * _MAX_HES_SLOT > budget)
        hesitant = i in hes_at or must
        if hesitant:
            h = HESITANT[int(rng.integers(len(HESITANT)))]
            wpm = int(rng.integers(105, 125))
            pause = round(float(rng.uniform(0.6, 1.2)), 2)
            text = h.text
        else:
            if not fluent and long_answers:  # a long answer repeats itself
                fluent = [FLUENT[question - 1][int(k)]
                          for k in rng.permutation(len(FLUENT[question - 1]))]
            if not fluent:
                break
            text = fluent.pop()
            wpm = int(rng.integers(150, 175))
            pause = round(float(rng.uniform(0.2, 0.5)), 2)
        slot = _slot(text, wpm)
        if t + pause + slot > budget:
            break
        seg_start = t
        t = round(t + pause, 2)
        utterances.append(Utterance(text, t, round(t + slot, 2), wpm, hesitant))
        t = round(t + slot, 2)
        if hesitant:
            seg_end = round(t + 0.2, 2)
            cues: dict[str, list[str]] = {"facial": [], "language": list(h.language),
                                          "audio": ["Pause", "Slow", *h.audio], "body": [],
                                          "inconsistencies": list(h.inconsistency)}
            if rng.random() < 0.6:  # looks away while hesitating: the face turns
                yaw = float(rng.uniform(70.0, 85.0))
                events.append(FaceEvent("turn", round(seg_start + 0.2, 2),
                                        round(min(seg_end, seg_start + 2.2), 2), yaw))
                cues["facial"].append("Gaze")
                cues["body"].append("Look away")
            certainty = ("high", "medium", "low")[int(rng.integers(3))]
            segments.append(SegmentPlan(seg_start, seg_end, certainty, cues))
            t = seg_end
    duration = round(t + float(rng.uniform(0.4, 0.8)), 2)
    if ah and not segments:
        raise ValueError("max_seconds too short for an A/H answer")
    # Face behaviour outside A/H: drift, zoom, and sometimes leaving the frame.
    busy = [(s.start_s, s.end_s) for s in segments]
    for kind, prob in (("move", 0.7), ("zoom", 0.5), ("absent", 0.35)):
        if rng.random() >= prob:
            continue
        length = float(rng.uniform(1.0, 2.0))
        start = round(float(rng.uniform(0.2, max(0.3, duration - length - 0.2))), 2)
        end = round(min(duration - 0.1, start + length), 2)
        if kind == "absent" and any(s < end and start < e for s, e in busy):
            continue
        amount = {"move": float(rng.uniform(-60, 60)), "zoom": float(rng.uniform(0.7, 1.4)),
                  "absent": 1.0}[kind]
        events.append(FaceEvent(kind, start, end, amount))
    events.sort(key=lambda e: (e.start_s, e.kind))
    return VideoPlan(question, fps, duration, tuple(utterances), tuple(segments),
                     tuple(events), pitch, voice)
