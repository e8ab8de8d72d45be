"""The release's video-level label files: ``split/*.txt``, ``bah-video.csv``, class ids.

Every variant writes the same line form, ``<video id>,<0|1>,<transcript>`` (the
transcript holds commas, so a line is split on its first two commas only). A test
split handed out without labels has an empty or placeholder label: such videos are
kept as unlabelled, never given a label (the reader ingests them without labels,
for predictions).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from typing import Any

import polars as pl

from store.errors import DatasetLayoutError
from store.release import codebook as cb
from store.release.ids import parse_video_ref
from store.release.layout import ReleaseLayout
from store.release.yamlio import load_yaml

#: labels that say "withheld" in a split file handed out without labels
PLACEHOLDER_LABELS = frozenset({"", "-1", "?", "none", "null", "na", "nan", "unknown"})

Report = Callable[[DatasetLayoutError], None]

SPLIT_SCHEMA = {"video_id": pl.String, "participant_id": pl.String, "split": pl.String,
                "label": pl.Int8, "release_id": pl.String, "transcript": pl.String}


def _label(text: str) -> int | str | None:
    """0 or 1; None for a placeholder; the text itself when it is neither."""
    value = text.strip()
    if value in ("0", "1"):
        return int(value)
    return None if value.lower() in PLACEHOLDER_LABELS else value


def read_splits(layout: ReleaseLayout, report: Report) -> pl.DataFrame:
    """One row per video line of the split files (``label`` null where withheld)."""
    files = sorted(p for p in layout.splits.iterdir()
                   if p.is_file() and p.suffix == ".txt")
    if not files:
        raise DatasetLayoutError("the split folder holds no split files", path=layout.splits,
                                 expected="train.txt, val.txt, test.txt")
    rows: list[dict[str, Any]] = []
    for f in files:
        split = cb.SPLIT_FILES.get(f.stem.lower())
        if split is None:
            raise DatasetLayoutError(f"unknown split file {f.name!r}", path=f,
                                     expected=f"one of {sorted(cb.SPLIT_FILES)} (.txt)")
        for lineno, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split(",", 2)
            label = _label(parts[1]) if len(parts) > 1 else None
            try:
                if isinstance(label, str):
                    raise DatasetLayoutError(
                        f"line {lineno}: label {label!r} in {line[:80]!r}", path=f,
                        expected="<video id>,<0|1 or empty>,<transcript>")
                key = parse_video_ref(parts[0], path=f)
            except DatasetLayoutError as exc:
                report(_on_line(exc, lineno))
                continue
            rows.append({"video_id": key.video_id, "participant_id": key.participant_id,
                         "split": split, "label": label, "release_id": key.ref,
                         "transcript": parts[2].strip() if len(parts) > 2 else None})
    df = pl.DataFrame(rows, schema=SPLIT_SCHEMA)
    for vid in df.filter(pl.col("video_id").is_duplicated())["video_id"].unique().sort():
        refs = df.filter(pl.col("video_id") == vid)["release_id"].to_list()
        report(DatasetLayoutError(f"video listed more than once in the split files: {refs}",
                                  path=layout.splits, video=vid,
                                  expected="each video in exactly one split, once"))
    per_pid = df.group_by("participant_id").agg(pl.col("split").unique().sort())
    for pid, splits in per_pid.filter(pl.col("split").list.len() > 1).sort(
            "participant_id").iter_rows():
        report(DatasetLayoutError(f"participant's videos are in several splits: {splits}",
                                  path=layout.splits, participant=pid,
                                  expected="splits by participant"))
    return df.unique("video_id", keep="first", maintain_order=True)


def _on_line(exc: DatasetLayoutError, lineno: int) -> DatasetLayoutError:
    """The same error with its line number in front (once)."""
    if exc.message.startswith("line "):
        return exc
    return type(exc)(f"line {lineno}: {exc.message}", path=exc.path,
                     participant=exc.participant, video=exc.video, expected=exc.expected)


def read_video_labels(layout: ReleaseLayout, report: Report) -> dict[str, int] | None:
    """``bah-video.csv`` as store video id -> label (None when the release has none).

    A first row whose label is not 0/1 is the header (``video-path,<class>``); a
    withheld label (empty or a placeholder, as in the split files) leaves the video out.
    """
    path = layout.labels_csv
    if path is None:
        return None
    labels: dict[str, int] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row:
                continue
            label = _label(row[1]) if len(row) > 1 else None
            try:
                if len(row) < 2 or isinstance(label, str):
                    if lineno == 1:
                        continue
                    raise DatasetLayoutError(f"line {lineno}: {row!r}", path=path,
                                             expected="<video id>,<0|1 or empty>")
                key = parse_video_ref(row[0], path=path)
            except DatasetLayoutError as exc:
                report(_on_line(exc, lineno))
                continue
            if label is not None:
                labels[key.video_id] = label
    return labels


def check_class_ids(layout: ReleaseLayout) -> None:
    """``class_id.yaml`` of the official splits must name the classes as bahfs reads them."""
    if layout.class_ids is None:
        return
    data = load_yaml(layout.class_ids)
    if data != cb.CLASS_IDS:
        raise DatasetLayoutError(f"class ids {data!r}", path=layout.class_ids,
                                 expected=f"{cb.CLASS_IDS!r} (label 1 = A/H present)")
