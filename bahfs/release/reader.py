"""Read a BAH release directory into typed polars frames, validating as we go.

Every mismatch with the expected layout raises :class:`DatasetLayoutError` (or a
subclass) naming the file, the entry and the key or form it expected. Nothing is
guessed silently. Videos are not opened here: probing is the ingest step's job.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl

from bahfs.errors import DatasetLayoutError, PathEscapeError
from bahfs.release import codebook as cb
from bahfs.release.models import (
    ParticipantMeta,
    TranscriptFile,
    VideoAnnotation,
    validate,
)
from bahfs.release.yamlio import load_yaml

_TIME_RE = re.compile(r"^(\d+):([0-5]?\d):([0-5]?\d(?:\.\d+)?)$")


@dataclass(frozen=True)
class VideoKey:
    """Identity of one video, parsed from its release path."""

    video_id: str
    participant_id: str
    visit: str
    question: int
    path: str  # relative to Videos/


@dataclass(frozen=True)
class Release:
    """A parsed release: one frame per table (before consent filtering and probing)."""

    root: Path
    participants: pl.DataFrame
    videos: pl.DataFrame  # without duration/fps/n_frames (ingest probes those)
    segments: pl.DataFrame
    cues: pl.DataFrame
    frame_labels: pl.DataFrame
    transcripts: pl.DataFrame
    splits: pl.DataFrame
    frame_base: dict[str, int]  # video_id -> 0 or 1 (numbering of frame images)


def safe_relative(root: Path, rel: str, *, path: Path, entry: str) -> Path:
    """Resolve ``rel`` under ``root``; refuse absolute paths and escapes."""
    pure = PurePosixPath(rel)
    if pure.is_absolute() or rel.startswith(("\\", "~")) or re.match(r"^[A-Za-z]:", rel):
        raise PathEscapeError(f"entry {entry!r}: absolute path {rel!r}", path=path,
                              expected="a path relative to the dataset root")
    resolved = (root / rel).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise PathEscapeError(f"entry {entry!r}: path {rel!r} escapes the dataset root",
                              path=path, expected=f"a path inside {root}")
    return resolved


def parse_video_path(rel: str, *, path: Path) -> VideoKey:
    """Parse ``<pid>/<visit>/<pid>_Question_<q>_<date>...`` into a :class:`VideoKey`."""
    if ".." in PurePosixPath(rel).parts:
        raise PathEscapeError(f"video path {rel!r} contains '..'", path=path,
                              expected="a path inside Videos/")
    m = cb.VIDEO_NAME_RE.match(rel)
    if m is None:
        raise DatasetLayoutError(f"video path {rel!r} does not follow the release naming",
                                 path=path, expected=cb.VIDEO_NAME_PATTERN)
    pid, visit, q = m["pid"], m["visit"], int(m["q"])
    return VideoKey(f"{pid}__{visit}__Q{q}", pid, visit, q, rel)


def parse_time(text: str, *, path: Path, entry: str) -> float:
    """``hh:mm:ss`` or ``hh:mm:ss.fff`` to seconds."""
    m = _TIME_RE.match(str(text).strip())
    if m is None:
        raise DatasetLayoutError(f"entry {entry!r}: bad time {text!r}", path=path,
                                 expected="hh:mm:ss[.fff]")
    return int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])


def _require(root: Path, name: str) -> Path:
    p = root / name
    if not p.exists():
        raise DatasetLayoutError(f"missing {name}", path=p,
                                 expected=f"{name} at the release root")
    return p


def read_meta(root: Path) -> pl.DataFrame:
    path = _require(root, cb.META_YML)
    data = load_yaml(path)
    if not isinstance(data, dict) or not data:
        raise DatasetLayoutError("not a mapping of participants", path=path,
                                 expected="participant id -> demographic fields")
    rows = []
    for pid, entry in data.items():
        meta = validate(ParticipantMeta, entry, path=path, entry=str(pid), participant=str(pid))
        rows.append({"participant_id": str(pid), **meta.model_dump()})
    return pl.DataFrame(rows, schema_overrides={"age": pl.Int16}, infer_schema_length=None)


def read_video_labels(root: Path) -> dict[str, int]:
    path = _require(root, cb.VIDEO_LABELS_CSV)
    labels: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row:
                continue
            if len(row) < 2 or row[1].strip() not in ("0", "1"):
                if lineno == 1:  # a header row
                    continue
                raise DatasetLayoutError(f"line {lineno}: {row!r}", path=path,
                                         expected="<video path>,<0|1>")
            labels[row[0].strip()] = int(row[1])
    return labels


def read_splits(root: Path) -> pl.DataFrame:
    """Video-level split files: ``<video path>,<0|1>,<transcript with commas>``."""
    split_dir = _require(root, cb.SPLIT_DIR)
    rows: list[dict[str, Any]] = []
    files = sorted(p for p in split_dir.iterdir() if p.is_file())
    if not files:
        raise DatasetLayoutError("split/ holds no split files", path=split_dir,
                                 expected="train.txt, val.txt, test.txt")
    for f in files:
        split = cb.SPLIT_FILES.get(f.stem.lower())
        if split is None:
            raise DatasetLayoutError(f"unknown split file {f.name!r}", path=f,
                                     expected=f"one of {sorted(cb.SPLIT_FILES)} (.txt)")
        for lineno, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split(",", 2)
            if len(parts) < 2 or parts[1].strip() not in ("0", "1"):
                raise DatasetLayoutError(f"line {lineno}: {line[:80]!r}", path=f,
                                         expected="<video path>,<0|1>,<transcript>")
            key = parse_video_path(parts[0].strip(), path=f)
            rows.append({"video_id": key.video_id, "participant_id": key.participant_id,
                         "split": split, "label": int(parts[1]), "path": key.path})
    df = pl.DataFrame(rows, schema_overrides={"label": pl.Int8})
    dup = df.filter(pl.col("video_id").is_duplicated())
    if dup.height:
        raise DatasetLayoutError(f"video listed twice in split files: {dup['path'][0]!r}",
                                 path=split_dir, expected="each video in exactly one split")
    per_pid = df.group_by("participant_id").agg(pl.col("split").n_unique().alias("n"))
    bad = per_pid.filter(pl.col("n") > 1)
    if bad.height:
        raise DatasetLayoutError(
            "participant's videos are in several splits", path=split_dir,
            participant=bad["participant_id"][0], expected="splits by participant")
    return df


def _cue_rows(cues: dict[str, Any], key: VideoKey, seg: int, path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for modality_key, names in cues.items():
        if modality_key not in cb.CUE_MODALITY_KEYS:
            raise DatasetLayoutError(
                f"entry {key.path!r}: unknown cue modality {modality_key!r} in segment {seg}",
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
                    f"entry {key.path!r}: unknown {modality} cue {name!r} in segment {seg}",
                    path=path, participant=key.participant_id, video=key.video_id,
                    expected=f"one of {list(cb.CODEBOOK[modality])}")
            rows.append({"video_id": key.video_id, "participant_id": key.participant_id,
                         "segment": seg, "modality": modality, "cue": canon})
    return rows


def _frame_rows(ann: VideoAnnotation, key: VideoKey, path: Path) -> tuple[list[int], list[int]]:
    stem = str(PurePosixPath(key.path).with_suffix(""))
    frames: list[int] = []
    labels: list[int] = []
    for frame_id, label in ann.frame_annotation:
        m = cb.FRAME_ID_RE.match(frame_id)
        if m is None or not m["video"].endswith(stem) or ".." in frame_id.split("/"):
            raise DatasetLayoutError(
                f"entry {key.path!r}: bad frame id {frame_id!r}", path=path,
                participant=key.participant_id, video=key.video_id,
                expected=f"{cb.FACES_DIR}/{stem}/frame-<n>.jpg")
        if label not in (0, 1):
            raise DatasetLayoutError(f"entry {key.path!r}: frame label {label!r}", path=path,
                                     video=key.video_id, expected="0 or 1")
        frames.append(int(m["n"]))
        labels.append(label)
    return frames, labels


def read_annotations(root: Path) -> tuple[dict[str, tuple[VideoKey, VideoAnnotation]], Path]:
    path = _require(root, cb.ANNOTATIONS_YAML)
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise DatasetLayoutError("not a mapping of videos", path=path,
                                 expected="video path -> annotation entry")
    out: dict[str, tuple[VideoKey, VideoAnnotation]] = {}
    for rel, entry in data.items():
        key = parse_video_path(str(rel), path=path)
        safe_relative(root / cb.VIDEOS_DIR, key.path, path=path, entry=key.path)
        ann = validate(VideoAnnotation, entry, path=path, entry=key.path,
                       participant=key.participant_id, video=key.video_id)
        n_seg = len(ann.fr_detailed_ah)
        if len(ann.time_detailed_ah) != n_seg or len(ann.all_cues) != n_seg:
            raise DatasetLayoutError(
                f"entry {key.path!r}: {n_seg} frame segments, {len(ann.time_detailed_ah)} "
                f"time segments, {len(ann.all_cues)} cue sets", path=path,
                participant=key.participant_id, video=key.video_id,
                expected="fr_detailed_ah, time_detailed_ah and all_cues of equal length")
        if isinstance(ann.certainty_ah, list) and len(ann.certainty_ah) != n_seg:
            raise DatasetLayoutError(
                f"entry {key.path!r}: certainty_ah has {len(ann.certainty_ah)} values for "
                f"{n_seg} segments", path=path, video=key.video_id,
                expected="one certainty per segment (or one for the video)")
        if ann.global_ah != int(n_seg > 0):
            raise DatasetLayoutError(
                f"entry {key.path!r}: global_ah={ann.global_ah} with {n_seg} segments",
                path=path, participant=key.participant_id, video=key.video_id,
                expected="global_ah = 1 exactly when the video has A/H segments")
        if key.video_id in {k.video_id for k, _ in out.values()}:
            raise DatasetLayoutError(f"two entries map to video id {key.video_id!r}",
                                     path=path, expected="one video per participant/visit/q")
        out[key.path] = (key, ann)
    return out, path


def read_transcription(root: Path, key: VideoKey) -> list[dict[str, Any]]:
    """Chunks of the Whisper transcription files of one video (none if absent)."""
    stem = str(PurePosixPath(key.path).with_suffix(""))
    folder = safe_relative(root / cb.TRANSCRIPTION_DIR, stem, path=root / cb.TRANSCRIPTION_DIR,
                           entry=key.path)
    if not folder.is_dir():
        return []
    rows: list[dict[str, Any]] = []
    for f in sorted(folder.glob("*.yml")) + sorted(folder.glob("*.yaml")):
        tf = validate(TranscriptFile, load_yaml(f), path=f, entry=f.name,
                      participant=key.participant_id, video=key.video_id)
        for chunk in tf.chunks:
            start, end = chunk.timestamp
            rows.append({"video_id": key.video_id, "participant_id": key.participant_id,
                         "chunk": len(rows), "start_s": start, "end_s": end,
                         "language": chunk.language, "text": chunk.text.strip()})
    return rows


def _frames_to_zero_based(frames: list[int], key: VideoKey, path: Path) -> int:
    """Check frame numbering is contiguous from 0 or 1; return the base."""
    if not frames:
        raise DatasetLayoutError(f"entry {key.path!r}: empty frame_annotation", path=path,
                                 video=key.video_id, expected="one label per frame")
    base = min(frames)
    ordered = sorted(frames)
    if base not in (0, 1) or ordered != list(range(base, base + len(frames))):
        raise DatasetLayoutError(
            f"entry {key.path!r}: frame numbers are not contiguous from 0 or 1 "
            f"(min {base}, max {ordered[-1]}, count {len(frames)})", path=path,
            participant=key.participant_id, video=key.video_id,
            expected="frame-<n> for every frame, n contiguous")
    return base


def _video_tables(root: Path, key: VideoKey, ann: VideoAnnotation, path: Path,
                  tables: dict[str, list[dict[str, Any]]], frame_base: dict[str, int]) -> None:
    frames, labels = _frame_rows(ann, key, path)
    base = _frames_to_zero_based(frames, key, path)
    frame_base[key.video_id] = base
    n = len(frames)
    seg_mask = [0] * n
    certainty = ann.certainty_ah
    for i, ((s, e), (ts, te), cues) in enumerate(
            zip(ann.fr_detailed_ah, ann.time_detailed_ah, ann.all_cues, strict=True)):
        s0, e0 = s - base, e - base
        if not 0 <= s0 <= e0 < n:
            raise DatasetLayoutError(
                f"entry {key.path!r}: segment {i} frames [{s}, {e}] outside the video "
                f"({n} frames numbered from {base})", path=path,
                participant=key.participant_id, video=key.video_id,
                expected=f"{base} <= start <= end <= {n - 1 + base}")
        start_s = parse_time(ts, path=path, entry=key.path)
        end_s = parse_time(te, path=path, entry=key.path)
        if end_s < start_s:
            raise DatasetLayoutError(f"entry {key.path!r}: segment {i} ends before it starts",
                                     path=path, video=key.video_id, expected="start <= end")
        cert = certainty[i] if isinstance(certainty, list) else certainty
        tables["segments"].append({
            "video_id": key.video_id, "participant_id": key.participant_id, "segment": i,
            "start_frame": s0, "end_frame": e0, "start_s": start_s, "end_s": end_s,
            "certainty": cert, "annotator_id": ann.annotator_id})
        tables["cues"].extend(_cue_rows(cues, key, i, path))
        for f in range(s0, e0 + 1):
            seg_mask[f] = 1
    by_frame = dict(zip((f - base for f in frames), labels, strict=True))
    for f in range(n):
        if by_frame[f] != seg_mask[f]:
            raise DatasetLayoutError(
                f"entry {key.path!r}: frame {f + base} labelled {by_frame[f]} but segments "
                f"say {seg_mask[f]}", path=path, participant=key.participant_id,
                video=key.video_id, expected="frame labels equal the union of fr_detailed_ah")
    tables["frame_labels"].append({"video_id": key.video_id,
                                   "participant_id": key.participant_id,
                                   "frame": list(range(n)), "label": seg_mask})
    tables["transcripts"].extend(read_transcription(root, key))


def read_release(root: Path) -> Release:
    """Parse and cross-check every annotation file of the release at ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError("dataset directory not found", path=root,
                                 expected="a BAH release directory")
    meta = read_meta(root)
    video_labels = read_video_labels(root)
    splits = read_splits(root)
    anns, ann_path = read_annotations(root)
    split_by_path = {r["path"]: r for r in splits.iter_rows(named=True)}
    known_pids = set(meta["participant_id"].to_list())
    tables: dict[str, list[dict[str, Any]]] = {
        "videos": [], "segments": [], "cues": [], "frame_labels": [], "transcripts": []}
    frame_base: dict[str, int] = {}
    for rel, (key, ann) in anns.items():
        if key.participant_id not in known_pids:
            raise DatasetLayoutError(f"video {rel!r} belongs to a participant missing from "
                                     f"{cb.META_YML}", path=ann_path,
                                     participant=key.participant_id, video=key.video_id,
                                     expected=f"participant {key.participant_id!r} in meta")
        if rel not in video_labels:
            raise DatasetLayoutError(f"video {rel!r} missing from {cb.VIDEO_LABELS_CSV}",
                                     path=root / cb.VIDEO_LABELS_CSV, video=key.video_id,
                                     expected="one line per annotated video")
        if video_labels[rel] != ann.global_ah:
            raise DatasetLayoutError(
                f"video {rel!r}: label {video_labels[rel]} in {cb.VIDEO_LABELS_CSV} but "
                f"global_ah {ann.global_ah}", path=root / cb.VIDEO_LABELS_CSV,
                video=key.video_id, expected="the same label in both files")
        split_row = split_by_path.get(rel)
        if split_row is None or split_row["label"] != ann.global_ah:
            raise DatasetLayoutError(
                f"video {rel!r} missing from split/ or labelled differently there",
                path=root / cb.SPLIT_DIR, video=key.video_id,
                expected=f"a line '{rel},{ann.global_ah},...' in one split file")
        tables["videos"].append({
            "video_id": key.video_id, "participant_id": key.participant_id,
            "visit": key.visit, "question": key.question, "path": rel,
            "global_label": ann.global_ah, "split": split_row["split"],
            "annotator_id": ann.annotator_id, "transcript": ann.transcript})
        _video_tables(root, key, ann, ann_path, tables, frame_base)
    extra = set(video_labels) - set(anns)
    if extra:
        raise DatasetLayoutError(f"{len(extra)} videos in {cb.VIDEO_LABELS_CSV} have no "
                                 f"annotation, e.g. {sorted(extra)[0]!r}", path=ann_path,
                                 expected="an entry per video")
    pid_split = splits.select("participant_id", "split").unique()
    participants = meta.join(pid_split, on="participant_id", how="left")
    frame_labels = (pl.DataFrame(tables["frame_labels"])
                    .explode("frame", "label")
                    .join(pl.DataFrame(tables["videos"]).select("video_id", "split"),
                          on="video_id", how="left"))
    return Release(
        root=root, participants=participants,
        videos=pl.DataFrame(tables["videos"]),
        segments=pl.DataFrame(tables["segments"]),
        cues=pl.DataFrame(tables["cues"]),
        frame_labels=frame_labels,
        transcripts=pl.DataFrame(tables["transcripts"]),
        splits=splits.drop("path"),
        frame_base=frame_base)
