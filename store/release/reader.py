"""Read a BAH release directory into typed polars frames, validating as we go.

The variant is recognised first (:mod:`store.release.layout`), then every file is
read and cross-checked. Every mismatch raises :class:`DatasetLayoutError` (or a
subclass) naming the file, the entry and the key or form it expected; nothing is
guessed silently. With ``collect=True`` (``bahfs check-release``) problems that
concern one video or one line are gathered instead, and the rest is still read.
Keys the reader does not know are reported in :attr:`Release.unknown_keys`.
Videos are not opened here: probing is the ingest step's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from store.errors import DatasetLayoutError
from store.release import codebook as cb
from store.release.entries import check_segments, cue_rows, frame_labels, parse_time
from store.release.ids import (
    VideoKey,
    parse_video_ref,
    video_file,
)
from store.release.layout import ReleaseLayout, detect_layout
from store.release.models import ParticipantMeta, VideoAnnotation, note_extra, validate
from store.release.splits import check_class_ids, read_splits, read_video_labels
from store.release.transcripts import read_transcription, transcription_file
from store.release.yamlio import load_yaml
from store.schema import schema


@dataclass
class Problems:
    """Problems found while reading: raised at once, or gathered (``collect``)."""

    collect: bool
    found: list[DatasetLayoutError] = field(default_factory=list)

    def __call__(self, exc: DatasetLayoutError) -> None:
        if not self.collect:
            raise exc
        self.found.append(exc)


@dataclass(frozen=True)
class Release:
    """A parsed release: one frame per table (before consent filtering and probing)."""

    root: Path
    layout: ReleaseLayout
    participants: pl.DataFrame
    videos: pl.DataFrame  # without duration/fps/n_frames (ingest probes those)
    segments: pl.DataFrame
    cues: pl.DataFrame
    frame_labels: pl.DataFrame
    transcripts: pl.DataFrame
    splits: pl.DataFrame
    unlabelled: pl.DataFrame  # split lines with labels withheld and no annotation (in videos)
    frame_base: dict[str, int]  # video_id -> 0 or 1 (numbering of frame ids)
    id_styles: tuple[str, ...]  # how the release spells its video ids
    unknown_keys: dict[str, list[str]]  # file -> keys bahfs does not read
    absent_keys: dict[str, int]  # optional annotation key -> entries without it
    problems: tuple[DatasetLayoutError, ...] = ()  # gathered with collect=True

    @property
    def notes(self) -> list[str]:
        """What a user should know about this copy, one line each (not errors)."""
        out = [f"{where}: keys not read by bahfs: {', '.join(keys)}"
               for where, keys in self.unknown_keys.items()]
        if self.absent_keys:
            out.append(f"{self.layout.annotations.name}: entries without "
                       + ", ".join(f"{k} ({n})" for k, n in self.absent_keys.items())
                       + ": those columns are empty for them")
        for split, n in self.unlabelled.group_by("split").len().sort("split").iter_rows():
            out.append(f"{n} videos of the {split} split have their labels withheld and no "
                       "annotation: ingested without labels (extracted and predicted, "
                       "never trained or evaluated on)")
        return list(self.layout.notes) + out


def read_meta(root: Path, unknown: dict[str, set[str]]) -> pl.DataFrame:
    path = root / cb.META_YML
    if not path.is_file():
        raise DatasetLayoutError(f"missing {cb.META_YML} (consent flags are read from it)",
                                 path=path, expected=f"{cb.META_YML} at the release root")
    data = load_yaml(path)
    if not isinstance(data, dict) or not data:
        raise DatasetLayoutError("not a mapping of participants", path=path,
                                 expected="participant id -> demographic fields")
    rows = []
    for pid, entry in data.items():
        meta = validate(ParticipantMeta, entry, path=path, entry=str(pid), participant=str(pid))
        note_extra(unknown, cb.META_YML, meta)
        rows.append({"participant_id": str(pid),
                     **meta.model_dump(include=set(ParticipantMeta.model_fields))})
    return pl.DataFrame(rows, schema_overrides={"age": pl.Int16}, infer_schema_length=None)


def read_annotations(layout: ReleaseLayout, report: Problems, unknown: dict[str, set[str]],
                     absent: dict[str, int], failed: set[str]
                     ) -> dict[str, tuple[VideoKey, VideoAnnotation]]:
    """Annotation entries by store video id, each checked against its variant's keys
    (optional keys an entry lacks are counted in ``absent``; ids of entries that
    failed their checks go to ``failed``)."""
    path = layout.annotations
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise DatasetLayoutError("not a mapping of videos", path=path,
                                 expected="video id -> annotation entry")
    out: dict[str, tuple[VideoKey, VideoAnnotation]] = {}
    for ref, entry in data.items():
        key = None
        try:
            key = parse_video_ref(str(ref), path=path)
            missing = [k for k in layout.required_keys
                       if not isinstance(entry, dict) or k not in entry]
            if isinstance(entry, dict) and missing:
                raise DatasetLayoutError(f"entry {key.ref!r}: missing key(s) "
                                         f"{', '.join(map(repr, missing))}",
                                         path=path, participant=key.participant_id,
                                         video=key.video_id,
                                         expected=f"keys {', '.join(layout.required_keys)}")
            ann = validate(VideoAnnotation, entry, path=path, entry=key.ref,
                           participant=key.participant_id, video=key.video_id)
            check_segments(ann, key, path)
            if key.video_id in out:
                raise DatasetLayoutError(
                    f"entries {out[key.video_id][0].ref!r} and {key.ref!r} are the same video "
                    "(participant, visit and question)", path=path, video=key.video_id,
                    expected="one video per participant, visit and question")
        except DatasetLayoutError as exc:
            report(exc)
            if key is not None:
                failed.add(key.video_id)
            continue
        note_extra(unknown, path.name, ann)
        for k in cb.ANNOTATION_KEYS:
            if k not in entry:
                absent[k] = absent.get(k, 0) + 1
        out[key.video_id] = (key, ann)
    return out


def _video_tables(root: Path, key: VideoKey, ann: VideoAnnotation, path: Path,
                  file_rel: str, unknown: dict[str, set[str]]
                  ) -> tuple[dict[str, list[Any]], int]:
    """Rows of one video for every per-video table (nothing is kept if this raises),
    and the numbering base of its frame ids."""
    labels, base = frame_labels(ann, key, path)
    n = len(labels)
    rows: dict[str, list[Any]] = {"segments": [], "cues": [], "transcripts": []}
    seg_mask = [0] * n
    for i, ((s, e), (ts, te)) in enumerate(
            zip(ann.fr_detailed_ah, ann.time_detailed_ah, strict=True)):
        s0, e0 = s - base, e - base
        if not 0 <= s0 <= e0 < n:
            raise DatasetLayoutError(
                f"entry {key.ref!r}: segment {i} frames [{s}, {e}] outside the video "
                f"({n} frames numbered from {base})", path=path,
                participant=key.participant_id, video=key.video_id,
                expected=f"{base} <= start <= end <= {n - 1 + base}")
        start_s = parse_time(ts, path=path, entry=key.ref)
        end_s = parse_time(te, path=path, entry=key.ref)
        if end_s < start_s:
            raise DatasetLayoutError(f"entry {key.ref!r}: segment {i} ends before it starts",
                                     path=path, video=key.video_id, expected="start <= end")
        cert = ann.certainty_ah[i] if isinstance(ann.certainty_ah, list) else ann.certainty_ah
        rows["segments"].append({
            "video_id": key.video_id, "participant_id": key.participant_id, "segment": i,
            "start_frame": s0, "end_frame": e0, "start_s": start_s, "end_s": end_s,
            "certainty": cert, "annotator_id": ann.annotator_id})
        if ann.all_cues is not None:
            rows["cues"].extend(cue_rows(ann.all_cues[i], key, i, path))
        seg_mask[s0:e0 + 1] = [1] * (e0 + 1 - s0)
    if labels != seg_mask:
        f = next(i for i, (a, b) in enumerate(zip(labels, seg_mask, strict=True)) if a != b)
        raise DatasetLayoutError(
            f"entry {key.ref!r}: frame {f + base} labelled {labels[f]} but segments "
            f"say {seg_mask[f]}", path=path, participant=key.participant_id,
            video=key.video_id, expected="frame labels equal the union of fr_detailed_ah")
    rows["frame_labels"] = [{"video_id": key.video_id, "participant_id": key.participant_id,
                             "frame": list(range(n)), "label": seg_mask}]
    transcript = transcription_file(root, key, file_rel)
    if transcript is not None:
        rows["transcripts"] = read_transcription(transcript, key, unknown)
    return rows, base


def _cross_check(key: VideoKey, ann: VideoAnnotation, layout: ReleaseLayout,
                 known_pids: set[str], video_labels: dict[str, int] | None,
                 split_row: dict[str, Any] | None) -> None:
    path = layout.annotations
    if key.participant_id not in known_pids:
        raise DatasetLayoutError(f"video {key.ref!r} belongs to a participant missing from "
                                 f"{cb.META_YML}", path=path, participant=key.participant_id,
                                 video=key.video_id,
                                 expected=f"participant {key.participant_id!r} in meta")
    if video_labels is not None and video_labels.get(key.video_id) != ann.global_ah:
        csv_path = layout.labels_csv or layout.root
        raise DatasetLayoutError(
            f"video {key.ref!r}: label {video_labels.get(key.video_id)} in {csv_path.name} "
            f"but global_ah {ann.global_ah}", path=csv_path, video=key.video_id,
            expected="one line per annotated video, with the same label")
    if split_row is None:
        raise DatasetLayoutError(
            f"video {key.ref!r} is in no split file", path=layout.splits,
            participant=key.participant_id, video=key.video_id,
            expected=f"a line '{key.ref},{ann.global_ah},...' in one split file")
    if split_row["label"] not in (None, ann.global_ah):
        raise DatasetLayoutError(
            f"video {key.ref!r}: label {split_row['label']} in the {split_row['split']} "
            f"split file but global_ah {ann.global_ah}", path=layout.splits,
            participant=key.participant_id, video=key.video_id,
            expected="the same label in both files")


def read_release(root: Path, *, collect: bool = False) -> Release:
    """Parse and cross-check every annotation file of the release at ``root``."""
    layout = detect_layout(Path(root))
    root = layout.root
    problems = Problems(collect)
    unknown: dict[str, set[str]] = {}
    absent: dict[str, int] = {}
    meta = read_meta(root, unknown)
    check_class_ids(layout)
    video_labels = read_video_labels(layout, problems)
    splits = read_splits(layout, problems)
    failed: set[str] = set()
    anns = read_annotations(layout, problems, unknown, absent, failed)
    split_by_id = {r["video_id"]: r for r in splits.iter_rows(named=True)}
    known_pids = set(meta["participant_id"].to_list())
    tables: dict[str, list[dict[str, Any]]] = {
        "videos": [], "segments": [], "cues": [], "frame_labels": [], "transcripts": []}
    frame_base: dict[str, int] = {}
    for vid, (key, ann) in anns.items():
        split_row = split_by_id.get(vid)
        file_rel = video_file(root, key)
        try:
            _cross_check(key, ann, layout, known_pids, video_labels, split_row)
            rows, frame_base[vid] = _video_tables(root, key, ann, layout.annotations,
                                                  file_rel, unknown)
        except DatasetLayoutError as exc:
            problems(exc)
            continue
        for name, more in rows.items():
            tables[name].extend(more)
        tables["videos"].append({
            "video_id": vid, "participant_id": key.participant_id, "visit": key.visit,
            "question": key.question, "release_id": key.ref, "path": file_rel,
            "global_label": ann.global_ah, "split": split_row["split"] if split_row else None,
            "annotator_id": ann.annotator_id, "transcript": ann.transcript})
    if video_labels is not None:  # (entries that failed their own checks are reported)
        for vid in sorted(set(video_labels) - set(anns) - failed):
            problems(DatasetLayoutError(
                f"video {vid!r} is in {cb.VIDEO_LABELS_CSV} but has no annotation",
                path=layout.annotations, video=vid, expected="an entry per labelled video"))
    orphans = splits.filter(~pl.col("video_id").is_in([*anns, *failed]))
    for vid, ref in orphans.filter(pl.col("label").is_not_null()).select(
            "video_id", "release_id").iter_rows():
        problems(DatasetLayoutError(
            f"video {ref!r} is labelled in the split files but has no annotation",
            path=layout.annotations, video=vid, expected="an entry per labelled video"))
    unlabelled = orphans.filter(pl.col("label").is_null())
    _unlabelled_videos(layout, unlabelled, known_pids, unknown, problems, tables)
    return _assemble(layout, meta, splits, tables, frame_base, anns, (unknown, absent),
                     problems, unlabelled)


def _unlabelled_videos(layout: ReleaseLayout, rows: pl.DataFrame, known_pids: set[str],
                       unknown: dict[str, set[str]], problems: Problems,
                       tables: dict[str, list[dict[str, Any]]]) -> None:
    """Video rows (no label, no frame labels) for split lines whose labels are withheld."""
    for row in rows.iter_rows(named=True):
        try:
            key = parse_video_ref(row["release_id"], path=layout.splits)
            if key.participant_id not in known_pids:
                raise DatasetLayoutError(
                    f"video {key.ref!r} belongs to a participant missing from {cb.META_YML}",
                    path=layout.splits, participant=key.participant_id, video=key.video_id,
                    expected=f"participant {key.participant_id!r} in meta")
            file_rel = video_file(layout.root, key)
            transcript = transcription_file(layout.root, key, file_rel)
            chunks = [] if transcript is None else read_transcription(transcript, key, unknown)
        except DatasetLayoutError as exc:
            problems(exc)
            continue
        tables["transcripts"].extend(chunks)
        tables["videos"].append({
            "video_id": key.video_id, "participant_id": key.participant_id,
            "visit": key.visit, "question": key.question, "release_id": key.ref,
            "path": file_rel, "global_label": None, "split": row["split"],
            "annotator_id": None, "transcript": row["transcript"]})


def _frame(tables: dict[str, list[dict[str, Any]]], name: str) -> pl.DataFrame:
    """Rows of a per-video table with the store's declared schema (never inferred from
    the first rows, where a column may be null throughout)."""
    return pl.DataFrame(tables[name], schema=schema(name))


def _assemble(layout: ReleaseLayout, meta: pl.DataFrame, splits: pl.DataFrame,
              tables: dict[str, list[dict[str, Any]]], frame_base: dict[str, int],
              anns: dict[str, tuple[VideoKey, VideoAnnotation]],
              keys: tuple[dict[str, set[str]], dict[str, int]], problems: Problems,
              unlabelled: pl.DataFrame) -> Release:
    videos = pl.DataFrame(tables["videos"], schema={
        "video_id": pl.String, "participant_id": pl.String, "visit": pl.String,
        "question": pl.Int8, "release_id": pl.String, "path": pl.String,
        "global_label": pl.Int8, "split": pl.String, "annotator_id": pl.String,
        "transcript": pl.String})
    pid_split = splits.select("participant_id", "split").unique("participant_id",
                                                                keep="first")
    frame_labels = pl.DataFrame(tables["frame_labels"], schema={
        "video_id": pl.String, "participant_id": pl.String, "frame": pl.List(pl.Int32),
        "label": pl.List(pl.Int8)}).explode("frame", "label").join(
        videos.select("video_id", "split"), on="video_id", how="left", maintain_order="left")
    kept = pl.col("video_id").is_in(videos["video_id"].to_list())
    return Release(
        root=layout.root, layout=layout,
        participants=meta.join(pid_split, on="participant_id", how="left",
                               maintain_order="left"),
        videos=videos, segments=_frame(tables, "segments"), cues=_frame(tables, "cues"),
        frame_labels=frame_labels, transcripts=_frame(tables, "transcripts"),
        splits=splits.filter(kept).drop("release_id", "transcript"),
        unlabelled=unlabelled, frame_base=frame_base,
        id_styles=tuple(sorted({key.style for key, _ in anns.values()})),
        unknown_keys={k: sorted(v) for k, v in sorted(keys[0].items())},
        absent_keys=keys[1],
        problems=tuple(problems.found))
