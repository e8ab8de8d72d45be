"""Face detection on keyframes, with the frames in between interpolated, and the
detections every face feature set reads (:class:`FaceDetections`).

Detecting the whole frame is what the face path spends its time on. With
``keyframe_stride`` N > 1 (:class:`extractors.face_detect.FaceDetectConfig`):

- frames whose index in the video is a multiple of N (keyframes), and the video's
  last frame, are detected on the whole frame, exactly as with N = 1;
- the frames between two keyframes that both found a face, and whose landmarks moved
  by at most ``track_motion`` face-box widths from one to the other, get boxes,
  landmarks and scores interpolated linearly between the two;
- the frames between two keyframes that both found no face get no face (a face seen
  for fewer than N - 1 frames between them is missed);
- between any other pair (a face lost or found, a fast move), the middle frame is
  detected on the whole frame and each half resolved the same way, down to single
  frames, so where a face appears or leaves is found as with N = 1.

A frame's result therefore depends on the video alone, never on how its frames were
batched: the detection stage (:class:`extractors.face_detect.FaceStage`) holds back
the frames after a video's last keyframe seen so far (at most N - 1) until the next
keyframe arrives, so a pipeline receives ``(frames, detections)`` chunks that can be
shorter or longer than the decoded batches. ``keyframe_stride`` 1 detects every frame
and holds nothing back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FaceDetections:
    """The top face of each frame of one decoded batch ``(B, H, W, 3)``, in frame
    pixels: what the detection stage (:mod:`extractors.pipeline`) hands every
    :class:`FaceConsumer`. Frames without a face (``found`` false) have zeros. The
    arrays are read-only: every consumer sees the same ones."""

    boxes: np.ndarray  # (B, 4) float32: x0 y0 x1 y1
    landmarks: np.ndarray  # (B, 10) float32: x, y of eyes, nose, mouth corners
    scores: np.ndarray  # (B,) float32: detector confidence (0 where no face)
    found: np.ndarray  # (B,) bool: a face above the detector's threshold

    def __post_init__(self) -> None:
        for a in (self.boxes, self.landmarks, self.scores, self.found):
            a.flags.writeable = False

    def __len__(self) -> int:
        return int(self.found.shape[0])

    def __getitem__(self, rows: slice) -> FaceDetections:
        return FaceDetections(self.boxes[rows], self.landmarks[rows], self.scores[rows],
                              self.found[rows])

    @classmethod
    def concat(cls, parts: list[FaceDetections]) -> FaceDetections:
        """The detections of consecutive batches as one (none: zero frames)."""
        if not parts:
            return cls(np.zeros((0, 4), np.float32), np.zeros((0, 10), np.float32),
                       np.zeros(0, np.float32), np.zeros(0, bool))
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("boxes", "landmarks", "scores", "found")))


@dataclass
class Track:
    """One video's detection state for one detector, carried from batch to batch:
    the index in the video of the first held-back frame and the detections of the
    last keyframe (None before the first)."""

    next_frame: int = 0
    keyframe: FaceDetections | None = None


def motion(a: FaceDetections, b: FaceDetections) -> float:
    """The largest landmark move from one-frame detections ``a`` to ``b``, in face-box
    widths of ``a``."""
    step = np.linalg.norm((b.landmarks[0] - a.landmarks[0]).reshape(5, 2), axis=1).max()
    width = max(float(a.boxes[0, 2] - a.boxes[0, 0]), 1.0)
    return float(step) / width


def interpolate(a: FaceDetections, b: FaceDetections, m: int) -> FaceDetections:
    """``m`` frames evenly between one-frame detections ``a`` and ``b``."""
    t = (np.arange(1, m + 1, dtype=np.float32) / (m + 1))[:, None]

    def lerp(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out: np.ndarray = ((1 - t) * x + t * y).astype(np.float32)
        return out

    return FaceDetections(lerp(a.boxes, b.boxes), lerp(a.landmarks, b.landmarks),
                          lerp(a.scores[:, None], b.scores[:, None])[:, 0],
                          np.ones(m, bool))


def resolve(whole: Callable[[np.ndarray], FaceDetections], stride: int, max_motion: float,
            track: Track, frames: np.ndarray, final: bool) -> FaceDetections:
    """Detections of the first frames of ``frames`` (the video's held-back frames
    and its next batch, from ``track.next_frame`` on) up to and including the last
    keyframe among them, every ``stride``-th frame of the video; ``final``: the last
    frame counts as a keyframe. ``whole`` detects on whole frames; gaps whose
    landmarks move at most ``max_motion`` face-box widths are interpolated. Advances
    ``track``; the caller holds back the rest.

    Between two detected frames that cannot be interpolated (a face lost or found, a
    fast move), the middle frame is detected and each half resolved the same way,
    level by level (one detector call per level for all such gaps), down to single
    frames."""
    n = len(frames)
    index = track.next_frame + np.arange(n)
    keys = np.flatnonzero(index % stride == 0)
    if final and n and (len(keys) == 0 or keys[-1] != n - 1):
        keys = np.append(keys, n - 1)
    if len(keys) == 0:
        return FaceDetections.concat([])
    end = int(keys[-1]) + 1
    out = {"boxes": np.zeros((end, 4), np.float32),
           "landmarks": np.zeros((end, 10), np.float32),
           "scores": np.zeros(end, np.float32), "found": np.zeros(end, bool)}
    known: dict[int, FaceDetections] = {}  # frame (-1: the last keyframe before) -> row
    if track.keyframe is not None:
        known[-1] = track.keyframe
    todo = [int(k) for k in keys]
    gaps: list[tuple[int, int]] = []
    while todo:
        det = whole(frames[todo])
        for j, k in enumerate(todo):
            known[k] = det[j:j + 1]
            _put(out, slice(k, k + 1), known[k])
        if not gaps:  # the first level: the gaps between consecutive keyframes
            starts = [-1 if -1 in known else int(keys[0])] + [int(k) for k in keys[:-1]]
            gaps = list(zip(starts, (int(k) for k in keys), strict=True))
        todo, gaps = _split(gaps, known, out, max_motion)
    track.keyframe = known[end - 1]
    track.next_frame += end
    return FaceDetections(out["boxes"], out["landmarks"], out["scores"], out["found"])


def _put(out: dict[str, np.ndarray], rows: slice, det: FaceDetections) -> None:
    for name, target in out.items():
        target[rows] = getattr(det, name)


def _split(gaps: list[tuple[int, int]], known: dict[int, FaceDetections],
           out: dict[str, np.ndarray], max_motion: float
           ) -> tuple[list[int], list[tuple[int, int]]]:
    """Fill the gaps between detected frames that can be filled (both without a
    face: none; both with one that moved little: interpolated); the others give the
    middle frame to detect next and their two halves."""
    todo: list[int] = []
    halves: list[tuple[int, int]] = []
    for a, b in gaps:
        m = b - a - 1
        if m <= 0:
            continue
        first, last = known[a], known[b]
        rows = slice(a + 1, b)
        if not first.found[0] and not last.found[0]:
            continue  # no face between them: out is zeros there already
        if first.found[0] and last.found[0] and motion(first, last) <= max_motion:
            _put(out, rows, interpolate(first, last, m))
        else:
            mid = (a + b) // 2
            todo.append(mid)
            halves += [(a, mid), (mid, b)]
    return todo, halves
