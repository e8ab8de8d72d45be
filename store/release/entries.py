"""Checks of one annotation entry: segment counts, times, cues, frame labels.

Each raises :class:`DatasetLayoutError` naming the file, the entry, the video and
the form expected.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from store.errors import DatasetLayoutError
from store.release import codebook as cb
from store.release.ids import VideoKey, frame_number, frame_prefix
from store.release.models import VideoAnnotation

_TIME_RE = re.compile(r"^(\d+):([0-5]?\d):([0-5]?\d(?:\.\d+)?)$")


def parse_time(text: str, *, path: Path, entry: str) -> float:
    """``hh:mm:ss`` or ``hh:mm:ss.fff`` to seconds."""
    m = _TIME_RE.match(str(text).strip())
    if m is None:
        raise DatasetLayoutError(f"entry {entry!r}: bad time {text!r}", path=path,
                                 expected="hh:mm:ss[.fff]")
    return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])


def cue_rows(cues: dict[str, Any], key: VideoKey, seg: int, path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for modality_key, names in cues.items():
        if modality_key not in cb.CUE_MODALITY_KEYS:
            raise DatasetLayoutError(
                f"entry {key.ref!r}: unknown cue modality {modality_key!r} in segment {seg}",
                path=path, participant=key.participant_id, video=key.video_id,
                expected=f"cue modality keys {list(cb.CUE_MODALITY_KEYS)}")
        modality = "inconsistency" if modality_key == "inconsistencies" else modality_key
        if names is None:
            continue
        items = [n.strip() for n in names.split(",")] if isinstance(names, str) else names
        known = {c.lower(): c for c in cb.CODEBOOK[modality]}
        for name in items:
            if not name:
                continue
            canon = known.get(str(name).strip().lower())
            if canon is None:
                raise DatasetLayoutError(
                    f"entry {key.ref!r}: unknown {modality} cue {name!r} in segment {seg}",
                    path=path, participant=key.participant_id, video=key.video_id,
                    expected=f"one of {list(cb.CODEBOOK[modality])}")
            rows.append({"video_id": key.video_id, "participant_id": key.participant_id,
                         "segment": seg, "modality": modality, "cue": canon})
    return rows


def frame_labels(ann: VideoAnnotation, key: VideoKey, path: Path) -> tuple[list[int], int]:
    """Frame labels in frame order (from 0), and the numbering base of the frame ids."""
    items = ann.frame_annotation
    if not items:
        raise DatasetLayoutError(f"entry {key.ref!r}: empty frame_annotation", path=path,
                                 video=key.video_id, expected="one label per frame")
    first = items[0]
    prefix = frame_prefix(first[0] if isinstance(first, list | tuple) and first else first,
                          key, path=path)
    by_frame: dict[int, int] = {}
    for item in items:
        n = frame_number(item[0], prefix) if isinstance(item, list | tuple) and len(item) == 2 \
            else None
        if n is None or item[1] not in (0, 1) or isinstance(item[1], bool) or n in by_frame:
            raise DatasetLayoutError(
                f"entry {key.ref!r}: bad frame annotation {item!r}", path=path,
                participant=key.participant_id, video=key.video_id,
                expected=f"[{prefix}frame-<n>.jpg, 0|1], each frame once")
        by_frame[n] = item[1]
    base, n_frames = min(by_frame), len(by_frame)
    if base not in (0, 1) or max(by_frame) != base + n_frames - 1:
        raise DatasetLayoutError(
            f"entry {key.ref!r}: frame numbers are not contiguous from 0 or 1 "
            f"(min {base}, max {max(by_frame)}, count {n_frames})", path=path,
            participant=key.participant_id, video=key.video_id,
            expected="frame-<n> for every frame, n contiguous")
    return [by_frame[base + i] for i in range(n_frames)], base


def check_segments(ann: VideoAnnotation, key: VideoKey, path: Path) -> None:
    n_seg = len(ann.fr_detailed_ah)
    lengths = {"time_detailed_ah": len(ann.time_detailed_ah)}
    if ann.all_cues is not None:
        lengths["all_cues"] = len(ann.all_cues)
    if isinstance(ann.certainty_ah, list):
        lengths["certainty_ah"] = len(ann.certainty_ah)
    bad = {k: n for k, n in lengths.items() if n != n_seg}
    if bad:
        raise DatasetLayoutError(
            f"entry {key.ref!r}: {n_seg} frame segments but "
            + ", ".join(f"{n} in {k}" for k, n in bad.items()), path=path,
            participant=key.participant_id, video=key.video_id,
            expected="one entry per segment in fr_detailed_ah, time_detailed_ah, all_cues, "
                     "certainty_ah")
    if ann.global_ah != int(n_seg > 0):
        raise DatasetLayoutError(
            f"entry {key.ref!r}: global_ah={ann.global_ah} with {n_seg} segments",
            path=path, participant=key.participant_id, video=key.video_id,
            expected="global_ah = 1 exactly when the video has A/H segments")
