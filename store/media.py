"""Probing media files with ffprobe (no decoding): duration, frame rate, frame count,
frame size as displayed (rotation applied)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from store.errors import ToolMissingError, VideoDecodeError


@dataclass(frozen=True)
class VideoInfo:
    """What ffprobe says about a video file.

    ``width`` and ``height`` are the frame size as displayed, which is the size ffmpeg
    decodes to: ffmpeg turns rotated frames upright, so a phone video stored 1920x1080
    with a 90-degree rotation decodes to 1080x1920. ``rotation`` is that rotation in
    degrees counter-clockwise (the display matrix convention), in [0, 360).
    """

    path: str
    duration_s: float
    fps: float
    n_frames: int
    width: int
    height: int
    has_audio: bool
    rotation: int = 0


def require_tool(name: str) -> str:
    """Return the path of a system tool or raise a clear error saying how to install it."""
    found = shutil.which(name)
    if found is None:
        raise ToolMissingError(
            f"{name} is not installed",
            expected=f"`apt-get install -y {'ffmpeg' if name.startswith('ff') else name}`",
        )
    return found


def _rate(text: str | None) -> float:
    if not text or text in ("0/0", "0"):
        return 0.0
    return float(Fraction(text))


def rotation_of(stream: dict[str, Any]) -> int:
    """Degrees counter-clockwise that a video stream is turned to be shown upright,
    in [0, 360): the "Display Matrix" side data's ``rotation`` (counter-clockwise),
    else the legacy ``rotate`` tag (clockwise, written by older muxers and ffprobes)."""
    for side in stream.get("side_data_list") or []:
        if side.get("rotation") is not None:
            return round(float(side["rotation"])) % 360
    tag = (stream.get("tags") or {}).get("rotate")
    try:
        return round(-float(tag)) % 360 if tag is not None else 0
    except ValueError:
        return 0


def display_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    """The frame size ffmpeg decodes to: swapped for a quarter turn (90 or 270 degrees);
    ffmpeg rotates any other angle inside the coded size."""
    return (height, width) if rotation % 180 == 90 else (width, height)


def _ffprobe(ffprobe: str, path: Path) -> dict[str, Any]:
    entries = ("stream=index,codec_type,avg_frame_rate,r_frame_rate,nb_frames,"
               "nb_read_packets,width,height,duration:stream_tags=rotate:"
               "stream_side_data=side_data_type,rotation:format=duration:"
               "packet=stream_index,flags")
    cmd = [ffprobe, "-v", "error", "-count_packets", "-show_entries", entries, "-of", "json",
           str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise VideoDecodeError(
            f"ffprobe cannot read the file: {proc.stderr.strip()[:300]}",
            path=path, expected="a readable video container (mp4, webm, mov)",
        )
    out: dict[str, Any] = json.loads(proc.stdout or "{}")
    return out


def shown_packets(info: dict[str, Any], index: int) -> int:
    """Packets of stream ``index`` that are shown: those an edit list discards (flag
    ``D``, e.g. the lead-in of a file cut without re-encoding) decode to no frame."""
    return sum(1 for p in info.get("packets") or []
               if p.get("stream_index") == index and "D" not in str(p.get("flags", "")))


def probe_video(path: Path) -> VideoInfo:
    """Probe ``path`` without decoding: count the video packets that are shown (reads,
    never decodes) and compare all the packets read with the header's frame count,
    which catches truncated files. Raises VideoDecodeError."""
    ffprobe = require_tool("ffprobe")
    if not path.is_file():
        raise VideoDecodeError("video file not found", path=path)
    if path.stat().st_size == 0:
        raise VideoDecodeError("video file is empty (0 bytes)", path=path)
    info = _ffprobe(ffprobe, path)
    streams = info.get("streams", [])
    video = next((s for s in streams if s.get("codec_type") == "video"), None)
    if video is None:
        raise VideoDecodeError("no video stream", path=path, expected="one video stream")
    packets = int(video.get("nb_read_packets") or 0)
    declared = int(video.get("nb_frames") or 0)  # absent in webm/mkv
    if declared and packets < declared:
        raise VideoDecodeError(
            f"video is truncated: its header declares {declared} frames, the file holds "
            f"{packets}", path=path, expected=f"{declared} frames")
    n_frames = shown_packets(info, int(video.get("index", -1)))
    if n_frames <= 0:
        raise VideoDecodeError("video stream holds no frames", path=path)
    duration = float(video.get("duration") or info.get("format", {}).get("duration") or 0.0)
    fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
    if fps <= 0 and duration > 0:
        fps = n_frames / duration
    rotation = rotation_of(video)
    width, height = display_size(int(video.get("width") or 0), int(video.get("height") or 0),
                                 rotation)
    return VideoInfo(
        path=str(path),
        duration_s=duration,
        fps=fps,
        n_frames=n_frames,
        width=width,
        height=height,
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
        rotation=rotation,
    )
