"""The release's Whisper transcription files, on one monotonic timeline per video.

Whisper writes chunk times relative to the 30 s window it is decoding: they drop
back near 0 when a new window starts, and the last chunk's end can be ``None``.
:func:`rebuild_timeline` detects each restart (a start that drops by more than
:data:`RESTART_DROP_S` below the previous chunk's start or end) and shifts the chunks
after it by the previous chunk's absolute end, where Whisper's next window began.
A missing end becomes the next chunk's start; the last chunk's missing end stays
``None`` here and ingest fills it with the probed duration of the video.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from store.errors import DatasetLayoutError
from store.release import codebook as cb
from store.release.ids import VideoKey, safe_relative
from store.release.models import TranscriptFile, note_extra, validate
from store.release.yamlio import load_yaml

RESTART_DROP_S = 1.0


def rebuild_timeline(times: Sequence[tuple[float | None, float | None]]
                     ) -> list[tuple[float, float | None, int]]:
    """``(start, end)`` per chunk, window-relative -> ``(start, end, window)`` absolute.

    ``window`` counts the restarts before the chunk (0 for the first window). A
    missing start is taken as the previous chunk's end. Starts never decrease; an end
    is never before its start.
    """
    out: list[tuple[float, float | None, int]] = []
    offset, window = 0.0, 0
    prev_raw: float | None = None  # the previous chunk's latest raw time (end, else start)
    prev_abs_end = 0.0
    for raw_start, raw_end in times:
        raw = prev_abs_end - offset if raw_start is None else float(raw_start)
        if prev_raw is not None and raw < prev_raw - RESTART_DROP_S:
            offset, window = prev_abs_end, window + 1
        start = max(raw + offset, out[-1][0] if out else 0.0)
        end = None if raw_end is None else max(float(raw_end) + offset, start)
        out.append((start, end, window))
        prev_raw = max(raw, float(raw_end)) if raw_end is not None else raw
        prev_abs_end = end if end is not None else start
    for i in range(len(out) - 1):  # a missing end inside the video: the next start
        if out[i][1] is None:
            out[i] = (out[i][0], max(out[i + 1][0], out[i][0]), out[i][2])
    return out


def transcription_file(root: Path, key: VideoKey, file_rel: str) -> Path | None:
    """The transcription file of a video, if the release has one.

    The folder is named like the video, extension included:
    ``transcription/<video id>/<video stem>.yml``; a video id without ``Videos/``
    is also looked up under the video file's own path.
    """
    base = root / cb.TRANSCRIPTION_DIR
    for name in dict.fromkeys([key.ref, file_rel]):
        if not (base / name).is_dir():
            continue
        folder = safe_relative(base, name, path=base, entry=key.ref)
        own = folder / f"{PurePosixPath(key.name).stem}.yml"
        if own.is_file():
            return own
        files = sorted(folder.glob("*.yml")) + sorted(folder.glob("*.yaml"))
        if len(files) == 1:
            return files[0]
        raise DatasetLayoutError(
            f"{len(files)} transcription files for {key.ref!r}", path=folder,
            participant=key.participant_id, video=key.video_id,
            expected=f"one file, {PurePosixPath(key.name).stem}.yml")
    return None


def read_transcription(path: Path, key: VideoKey, unknown: dict[str, set[str]]
                       ) -> list[dict[str, Any]]:
    """Rows of the ``transcripts`` table for one video, times on one timeline.

    Keys the reader does not know are added to ``unknown`` (file name -> keys).
    """
    tf = validate(TranscriptFile, load_yaml(path), path=path, entry=path.name,
                  participant=key.participant_id, video=key.video_id)
    note_extra(unknown, "transcription files", tf, *tf.chunks)
    timeline = rebuild_timeline([c.timestamp for c in tf.chunks])
    return [{"video_id": key.video_id, "participant_id": key.participant_id, "chunk": i,
             "start_s": start, "end_s": end, "window": window, "language": c.language,
             "text": c.text.strip()}
            for i, (c, (start, end, window)) in enumerate(zip(tf.chunks, timeline, strict=True))]
