"""Render a planned sample video: a real face on a room, encoded H.264/AAC by ffmpeg.

The face is scikit-image's astronaut photograph (public domain, NASA). It sways,
moves, zooms, turns away (the head as a turning cylinder) and leaves the frame as the plan says. The
renderer also returns, per frame, whether a frontal face is visible: the ground
truth for face-detection tests.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from bahfs.sample.script import FaceEvent, VideoPlan
from bahfs.sample.speech import render_audio, write_wav
from store.errors import SampleDataError
from store.media import require_tool

FRAME_W, FRAME_H = 320, 240
_CROP = (slice(0, 300), slice(100, 360))  # head and shoulders of the astronaut
_HEAD = (127.0, 100.0)  # head centre inside the crop
_HEAD_BOX = (50.0, 10.0, 205.0, 195.0)  # x0, y0, x1, y1 of the head inside the crop
BASE_SCALE = 0.55


@dataclass(frozen=True)
class Appearance:
    """What differs between participants: skin/clothes tint and the room."""

    tint: tuple[float, float, float]
    wall: tuple[int, int, int]
    shelf: tuple[int, int, int]


@lru_cache(maxsize=1)
def _sprite() -> tuple[np.ndarray, np.ndarray]:
    from skimage import data  # local import: scikit-image is slow to import

    rgb = np.asarray(data.astronaut())[_CROP].astype(np.float32)  # type: ignore[no-untyped-call]
    h, w = rgb.shape[:2]
    hard = np.zeros((h, w), np.float32)
    cv2.ellipse(hard, (127, 100), (82, 100), 0, 0, 360, 1.0, -1)
    cv2.ellipse(hard, (127, 300), (130, 115), 0, 0, 360, 1.0, -1)
    mask: np.ndarray = cv2.GaussianBlur(hard, (0, 0), 4.0)
    return rgb, mask


def background(app: Appearance) -> np.ndarray:
    """A plain room: a wall with a vertical gradient and a shelf."""
    y = np.linspace(0.85, 1.1, FRAME_H, dtype=np.float32)[:, None, None]
    bg = np.ones((FRAME_H, FRAME_W, 3), np.float32) * np.array(app.wall, np.float32) * y
    cv2.rectangle(bg, (230, 40), (310, 150), tuple(float(c) for c in app.shelf), -1)
    cv2.rectangle(bg, (10, 20), (70, 90), tuple(float(c) * 0.8 for c in app.shelf), -1)
    out: np.ndarray = np.clip(bg, 0, 255)
    return out


def _bump(t: float, ev: FaceEvent, ramp: float = 0.35) -> float:
    """0 outside the event, ramps to 1 inside it (smooth start and end)."""
    if not ev.start_s <= t <= ev.end_s:
        return 0.0
    r = min(ramp, (ev.end_s - ev.start_s) / 2)
    x = min(t - ev.start_s, ev.end_s - t) / r if r > 0 else 1.0
    return float(0.5 - 0.5 * np.cos(np.pi * min(x, 1.0)))


def face_pose(plan: VideoPlan, t: float) -> tuple[float, float, float, float]:
    """(head centre x, y, scale, yaw degrees) at time ``t``."""
    cx = FRAME_W / 2 + 5.0 * np.sin(2 * np.pi * 0.3 * t)
    cy = 100.0 + 3.0 * np.sin(2 * np.pi * 0.2 * t + 1.0)
    scale, yaw = BASE_SCALE, 0.0
    for ev in plan.face_events:
        b = _bump(t, ev)
        if b == 0.0:
            continue
        if ev.kind == "move":
            cx += ev.amount * b
        elif ev.kind == "zoom":
            scale *= 1.0 + (ev.amount - 1.0) * b
        elif ev.kind == "turn":
            yaw = ev.amount * b
        elif ev.kind == "absent":
            cx += (FRAME_W * 0.5 + 130 * scale) * b
    return float(cx), float(cy), float(scale), float(yaw)


def head_box(cx: float, cy: float, scale: float, yaw: float) -> tuple[float, ...]:
    """The head's box in the frame for a pose."""
    sx = scale * np.cos(np.radians(yaw))
    x0, y0, x1, y1 = _HEAD_BOX
    return (cx + sx * (x0 - _HEAD[0]), cy + scale * (y0 - _HEAD[1]),
            cx + sx * (x1 - _HEAD[0]), cy + scale * (y1 - _HEAD[1]))


def face_visible(cx: float, cy: float, scale: float, yaw: float) -> bool:
    """Ground truth: a frontal face, at least 70 % of its box inside the frame."""
    x0, y0, x1, y1 = head_box(cx, cy, scale, yaw)
    area = (x1 - x0) * (y1 - y0)
    ix = max(0.0, min(x1, FRAME_W) - max(x0, 0.0))
    iy = max(0.0, min(y1, FRAME_H) - max(y0, 0.0))
    return abs(yaw) < 45.0 and area > 0 and ix * iy / area >= 0.7


def turn_head(rgb: np.ndarray, mask: np.ndarray, yaw: float) -> tuple[np.ndarray, np.ndarray]:
    """The sprite's head turned by ``yaw`` degrees about a vertical axis, as a cylinder
    of the head's half-width whose front stands out by 0.6 of it (the nose side moves
    toward the turn, the far cheek is compressed and hidden); yaw > 0 is the person
    turning to their own left (the nose moves to the image's right). The shoulders do
    not turn (blended back in below the chin)."""
    if yaw == 0.0:
        return rgb, mask
    t = np.radians(yaw)
    h, w = mask.shape
    r = (_HEAD_BOX[2] - _HEAD_BOX[0]) / 2 + 6.0
    x = np.linspace(-r, r, 2048)
    fwd = x * np.cos(t) + 0.6 * r * np.sqrt(np.clip(1 - (x / r) ** 2, 0, 1)) * np.sin(t)
    seen = np.r_[np.diff(fwd) > 0, False] | np.r_[False, np.diff(fwd) > 0]
    dst = np.arange(w, dtype=np.float64) - _HEAD[0]
    src = np.interp(dst, fwd[seen], x[seen], left=np.nan, right=np.nan)
    inside = np.isfinite(src)
    src = np.where(inside, src, np.where(dst < 0, dst - fwd[seen][0] + x[seen][0],
                                         dst - fwd[seen][-1] + x[seen][-1]))
    map_x = np.broadcast_to((src + _HEAD[0]).astype(np.float32), (h, w))
    rows = np.arange(h, dtype=np.float32)[:, None]
    head = np.clip((_HEAD_BOX[3] + 20.0 - rows) / 40.0, 0.0, 1.0)  # 1 on the head
    map_x = head * map_x + (1 - head) * np.arange(w, dtype=np.float32)[None, :]
    map_y = np.broadcast_to(rows, (h, w)).astype(np.float32)
    out_rgb = cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR, borderValue=0)
    out_mask = cv2.remap(mask, map_x, map_y, cv2.INTER_LINEAR, borderValue=0)
    out_mask[:, ~inside] *= 1 - head
    return out_rgb, out_mask


def render_frame(bg: np.ndarray, app: Appearance, pose: tuple[float, float, float, float]
                 ) -> np.ndarray:
    """Composite the face at ``pose`` on ``bg``; returns uint8 RGB (H, W, 3)."""
    cx, cy, scale, yaw = pose
    rgb, mask = turn_head(*_sprite(), yaw)
    sx = scale
    m = np.array([[sx, 0.0, cx - sx * _HEAD[0]], [0.0, scale, cy - scale * _HEAD[1]]],
                 np.float32)
    face = cv2.warpAffine(rgb, m, (FRAME_W, FRAME_H), flags=cv2.INTER_LINEAR)
    alpha = cv2.warpAffine(mask, m, (FRAME_W, FRAME_H), flags=cv2.INTER_LINEAR)[..., None]
    face = face * np.array(app.tint, np.float32) * (1.0 - 0.45 * np.sin(np.radians(abs(yaw))))
    out: np.ndarray = np.clip(bg * (1.0 - alpha) + face * alpha, 0, 255).astype(np.uint8)
    return out


def _ffmpeg_cmd(out: Path, fps: float, wav: str | None) -> list[str]:
    cmd = [require_tool("ffmpeg"), "-y", "-loglevel", "error",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{FRAME_W}x{FRAME_H}",
           "-r", f"{fps:g}", "-i", "pipe:0"]
    if wav is not None:
        cmd += ["-i", wav, "-map", "0:v", "-map", "1:a", "-c:a", "aac", "-b:a", "64k"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
            "-g", str(round(fps * 2)), "-bf", "0", "-threads", "1",
            "-movflags", "+faststart", "-f", "mp4", str(out)]
    return cmd


def write_video(out: Path, plan: VideoPlan, app: Appearance, rng: np.random.Generator,
                *, with_audio: bool = True) -> np.ndarray:
    """Encode ``plan`` to ``out`` (atomically); return has_face per frame (bool)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    bg = background(app)
    has_face = np.zeros(plan.n_frames, dtype=bool)
    with tempfile.TemporaryDirectory(prefix="bahfs-render-") as tmp:
        wav = None
        if with_audio:
            wav = os.path.join(tmp, "audio.wav")
            write_wav(wav, render_audio(plan, rng))
        partial = out.with_name(f".{out.name}.partial")
        proc = subprocess.Popen(_ffmpeg_cmd(partial, plan.fps, wav),
                                stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.stdin is None:  # pragma: no cover - Popen contract
            raise SampleDataError("ffmpeg has no stdin", path=out)
        try:
            for i in range(plan.n_frames):
                pose = face_pose(plan, i / plan.fps)
                has_face[i] = face_visible(*pose)
                proc.stdin.write(render_frame(bg, app, pose).tobytes())
            proc.stdin.close()
        except BrokenPipeError:
            pass
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.wait() != 0:
            partial.unlink(missing_ok=True)
            raise SampleDataError(f"ffmpeg failed to encode: {err[:300]}", path=out)
        os.replace(partial, out)
    return has_face
