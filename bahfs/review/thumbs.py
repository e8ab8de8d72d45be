"""Small JPEG thumbnails for the strip of frames of a review page, as data URIs.

``frames``: decoded from the video file by ffmpeg at a few frames per second (ffmpeg
selects every n-th decoded frame and scales it down, so the full-size frames never
leave the decoder; frames are counted in decoding order, as :mod:`extractors.decode`
counts them, and rotated videos come out upright). ``crops``: the stored aligned face
crops of a ``face_crop`` feature set at the same frames (no video needed).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import ffmpeg
import numpy as np
from PIL import Image

from bahfs.review.data import ReviewStore, VideoView
from extractors.decode import ffmpeg_output
from store.errors import ConfigError, NotFoundError, VideoDecodeError
from store.media import probe_video
from store.reader import FeatureReader

THUMB_MODES = ("auto", "frames", "crops", "none")


def jpeg_uri(rgb: np.ndarray, quality: int = 60) -> str:
    """An RGB uint8 image as a ``data:image/jpeg;base64,...`` URI."""
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def thumb_frames(n_frames: int, fps: float, per_second: float) -> list[int]:
    """Frame indices of the strip: every ``round(fps / per_second)``-th frame."""
    step = max(1, round(fps / per_second))
    return list(range(0, n_frames, step))


def decoded_thumbs(path: Path, frames: list[int], width: int = 160,
                   quality: int = 60) -> tuple[list[str], float]:
    """JPEG data URIs of ``frames`` (evenly spaced from 0) of the video at ``path``,
    and their width / height."""
    if not frames:
        return [], 4 / 3
    step = frames[1] - frames[0] if len(frames) > 1 else 1
    info = probe_video(path)
    if info.width <= 0 or info.height <= 0:
        raise VideoDecodeError("video stream has no frame size", path=path)
    w = width
    h = max(2, round(width * info.height / info.width / 2) * 2)
    out = ffmpeg_output(ffmpeg.input(str(path)).output(
        "pipe:", format="rawvideo", pix_fmt="rgb24", map="0:v:0",
        vf=f"select=not(mod(n\\,{step})),scale={w}:{h}", fps_mode="passthrough"),
        path, "thumbnails", "a decodable video stream")
    images = np.frombuffer(out, np.uint8)
    n = images.size // (w * h * 3)
    images = images[: n * w * h * 3].reshape(n, h, w, 3)
    return [jpeg_uri(img, quality) for img in images[: len(frames)]], w / h


def crop_thumbs(reader: FeatureReader, fs_id: str, video_id: str, frames: list[int],
                width: int = 96, quality: int = 60) -> list[str]:
    """JPEG data URIs of the stored face crops of ``frames``."""
    out = []
    for f in frames:
        crop = reader.read_rows(fs_id, video_id, "crop", f, f + 1)[0]
        img = Image.fromarray(np.ascontiguousarray(crop)).resize((width, width))
        out.append(jpeg_uri(np.asarray(img), quality))
    return out


def attach_thumbs(rs: ReviewStore, view: VideoView, mode: str = "auto",
                  per_second: float = 2.0) -> None:
    """Fill ``view.thumbs`` (time, frame, data URI) and ``view.thumb_source``.

    ``auto``: frames decoded from the video file when it is there, else the stored face
    crops when a ``face_crop`` feature set holds the video, else none."""
    if mode not in THUMB_MODES:
        raise ConfigError(f"thumbnails {mode!r}", expected=" or ".join(THUMB_MODES))
    v = view.video
    frames = thumb_frames(len(view.timestamps), float(v["fps"] or 24.0), per_second)
    file = Path(v["source"] or "") / (v["path"] or "")
    crops = next((fs for fs, label in view.feature_sets.items()
                  if rs.sets[fs].extractor == "face_crop"), None)
    uris: list[str] = []
    source = "none"
    if mode == "frames" or (mode == "auto" and file.is_file()):
        try:
            uris, view.thumb_aspect = decoded_thumbs(file, frames)
            source = "frames"
        except (VideoDecodeError, NotFoundError) as exc:
            if mode == "frames":
                raise
            source = f"none (the video did not decode: {exc})"
    if not uris and crops is not None and mode in ("auto", "crops"):
        uris, source = crop_thumbs(rs.reader, crops, v["video_id"], frames), "face crops"
        view.thumb_aspect = 1.0
    elif mode == "crops" and crops is None:
        raise NotFoundError("no face_crop feature set holds this video", video=v["video_id"],
                            participant=v["participant_id"],
                            expected="`bahfs extract` with face_crop, or --thumbs frames")
    view.thumbs = [(float(view.timestamps[f]), f, u) for f, u in zip(frames, uris,
                                                                      strict=False)]
    view.thumb_source = source
