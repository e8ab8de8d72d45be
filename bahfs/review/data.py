"""What a review page shows of one video, read from the store: the video's row, its
A/H segments with certainty and cues, frame labels, the release's transcript chunks,
bahfs's ASR words, and per-frame tracks from every feature set the video is in.

Tracks are read through :class:`store.reader.FeatureReader` and downsampled to a few
values per second (the bin mean: a boolean becomes the fraction of the bin's frames
where it holds), so that a page stays small. Which arrays become tracks is read from
each feature set's declared arrays, not from a list of known extractors:

* a per-frame scalar (shape ``()``) is a track; booleans and values within [0, 1]
  share one row per feature set, other scales (``energy_db``) get a row each;
  integer indices (``*_index``) are left out;
* a per-frame vector whose doc names its components (``emotions``: "angry, disgust,
  ...") is a row of one line per component;
* other vectors (embeddings, boxes, landmarks, crops) are not drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from store.backend import Store
from store.errors import NotFoundError
from store.features import ArraySpec, FeatureSetSpec
from store.local import as_store
from store.reader import FeatureReader

#: vectors wider than this are never drawn as one line per component
MAX_COMPONENTS = 12


@dataclass(frozen=True)
class Track:
    """One line: ``y`` over ``t`` (seconds), downsampled."""

    name: str
    t: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class Row:
    """One subplot: its title, tracks, and whether its values lie in [0, 1]."""

    title: str
    tracks: tuple[Track, ...]
    unit_range: bool


@dataclass
class VideoView:
    """Everything a video's page shows (plain values; :mod:`bahfs.review.page` draws it)."""

    video: dict[str, Any]
    timestamps: np.ndarray  # (n_frames,) seconds
    labels: np.ndarray | None  # (n_frames,) int8, None where the release withholds them
    segments: list[dict[str, Any]]  # start_s, end_s, segment, certainty, cues
    transcript: list[dict[str, Any]]  # the release's chunks: start_s, end_s, text
    words: list[dict[str, Any]]  # bahfs's ASR words: word, start_s, end_s, probability
    rows: list[Row]
    feature_sets: dict[str, str]  # feature set id -> label
    quarantine: list[dict[str, Any]]  # stage, reason
    face_coverage: float | None = None  # fraction of frames with has_face
    thumbs: list[tuple[float, int, str]] = field(default_factory=list)  # t, frame, data URI
    thumb_source: str = "none"
    thumb_aspect: float = 4 / 3  # width / height of the thumbnails
    run: dict[str, Any] | None = None  # name, t, p, score, window_start_s, window_end_s


def bin_mean(values: np.ndarray, step: int) -> np.ndarray:
    """Means of consecutive bins of ``step`` values (the last bin may be shorter)."""
    v = np.asarray(values, dtype=np.float64)
    if step <= 1 or v.shape[0] == 0:
        return v
    starts = np.arange(0, v.shape[0], step)
    counts = np.diff(np.r_[starts, v.shape[0]])
    sums = np.add.reduceat(v, starts, axis=0)
    means: np.ndarray = sums / (counts if v.ndim == 1 else counts[:, None])
    return means


def named_components(a: ArraySpec) -> list[str] | None:
    """Component names of a per-frame vector whose doc lists them, else None."""
    if len(a.shape) != 1 or not 1 < a.shape[0] <= MAX_COMPONENTS:
        return None
    names = [n.strip() for n in a.doc.split(",")]
    if len(names) != a.shape[0] or not all(n and " " not in n for n in names):
        return None
    return names


def _drawn(a: ArraySpec) -> bool:
    if a.shape == ():
        return not a.name.endswith("_index")
    return named_components(a) is not None


def feature_rows(reader: FeatureReader, fs_id: str, spec: FeatureSetSpec, video_id: str,
                 step: int) -> tuple[list[Row], np.ndarray, float | None]:
    """The rows of one feature set for one video, its timestamps, and its face
    coverage when it has a ``has_face`` array."""
    arrays = [a for a in spec.arrays if _drawn(a)]
    data = reader.video(fs_id, video_id, ["timestamps", *(a.name for a in arrays)])
    ts = data["timestamps"]
    t = np.round(bin_mean(ts, step), 3)
    coverage = float(data["has_face"].mean()) if "has_face" in data else None
    flags: list[Track] = []
    rows: list[Row] = []
    for a in arrays:
        values = data[a.name].astype(np.float64)
        y = bin_mean(values, step)
        if a.shape == ():
            finite = y[np.isfinite(y)]
            in_unit = a.dtype == "bool" or (finite.size > 0 and finite.min() >= 0
                                            and finite.max() <= 1)
            track = Track(a.name, t, y)
            if in_unit:
                flags.append(track)
            else:
                rows.append(Row(f"{spec.label} · {a.name}", (track,), unit_range=False))
        else:
            names = named_components(a) or []
            rows.append(Row(f"{spec.label} · {a.name}",
                            tuple(Track(n, t, y[:, i]) for i, n in enumerate(names)),
                            unit_range=bool(np.nanmin(y) >= 0 and np.nanmax(y) <= 1)))
    if flags:
        rows.insert(0, Row(spec.label, tuple(flags), unit_range=True))
    return rows, ts, coverage


def _records(df: pl.DataFrame) -> list[dict[str, Any]]:
    return df.to_dicts()


class ReviewStore:
    """A store's tables and features, read once and shared by the pages of a site."""

    def __init__(self, store: Store | Path) -> None:
        st = self.opened = as_store(store)  # a folder or a bucket
        self.store = st.location  # as errors and the index name it
        self.videos = st.read_table("videos")
        self.segments = st.read_table_or_empty("segments")
        self.cues = st.read_table_or_empty("cues")
        self.transcripts = st.read_table_or_empty("transcripts")
        self.asr = st.read_table_or_empty("asr_words")
        self.quarantine = st.read_table_or_empty("quarantine")
        self.reader = FeatureReader(st)
        self.sets = self.reader.featuresets()
        self.members = {fs: set(self.reader.extracted(fs)) for fs in self.sets}

    def extracted(self) -> list[str]:
        """Video ids of the videos table present in at least one feature set."""
        inside = set().union(*self.members.values()) if self.members else set()
        return [v for v in self.videos["video_id"].to_list() if v in inside]

    def view(self, video_id: str, hz: float = 8.0) -> VideoView:
        """What the page of ``video_id`` shows (tracks at about ``hz`` values a second)."""
        match = self.videos.filter(pl.col("video_id") == video_id)
        if match.height == 0:
            q = self.quarantine.filter(pl.col("video_id") == video_id)
            if q.height:
                raise NotFoundError(
                    f"video {video_id!r} was quarantined at {q['stage'][0]} "
                    f"({q['reason'][0]}) and is not in the videos table", path=self.store,
                    video=video_id, expected="a video that ingest accepted")
            raise NotFoundError(f"video {video_id!r} is not in the videos table",
                                path=self.store, video=video_id,
                                expected="a video id from the index of `bahfs review STORE`")
        video = match.row(0, named=True)
        fps = float(video["fps"] or 24.0)
        step = max(1, round(fps / hz))
        rows: list[Row] = []
        present: dict[str, str] = {}
        timestamps: np.ndarray | None = None
        coverage: float | None = None
        for fs_id, spec in self.sets.items():
            if video_id not in self.members[fs_id]:
                continue
            present[fs_id] = spec.label
            fs_rows, ts, cov = feature_rows(self.reader, fs_id, spec, video_id, step)
            rows += fs_rows
            timestamps = ts if timestamps is None else timestamps
            coverage = cov if coverage is None else coverage
        if timestamps is None:
            timestamps = np.arange(int(video["n_frames"])) / fps
        labels: np.ndarray | None = None
        if video["global_label"] is not None:
            try:
                labels = self.reader.labels(video_id)
            except NotFoundError:
                labels = None
        return VideoView(
            video=video, timestamps=timestamps, labels=labels,
            segments=self._segments(video_id), transcript=self._transcript(video_id),
            words=self._words(video_id), rows=rows, feature_sets=present,
            quarantine=_records(self.quarantine.filter(pl.col("video_id") == video_id)
                                .select("stage", "reason")),
            face_coverage=coverage)

    def _segments(self, video_id: str) -> list[dict[str, Any]]:
        seg = self.segments.filter(pl.col("video_id") == video_id)
        cues = self.cues.filter(pl.col("video_id") == video_id)
        by_seg: dict[int, list[str]] = {}
        for s, modality, cue in cues.select("segment", "modality", "cue").iter_rows():
            by_seg.setdefault(int(s), []).append(f"{modality}: {cue}")
        return [{**r, "cues": by_seg.get(int(r["segment"]), [])}
                for r in _records(seg.sort("start_s").select(
                    "segment", "start_s", "end_s", "certainty"))]

    def _transcript(self, video_id: str) -> list[dict[str, Any]]:
        t = self.transcripts.filter(pl.col("video_id") == video_id)
        return _records(t.sort("start_s").select("start_s", "end_s", "text"))

    def _words(self, video_id: str) -> list[dict[str, Any]]:
        w = self.asr.filter(pl.col("video_id") == video_id)
        if w.height and w["feature_set"].n_unique() > 1:  # several words sets: the first
            w = w.filter(pl.col("feature_set") == w["feature_set"].sort()[0])
        return _records(w.sort("word_index").select("word", "start_s", "end_s",
                                                    "probability"))


def summary(view: VideoView) -> dict[str, Any]:
    """The index row of a video."""
    v = view.video
    return {
        "video_id": v["video_id"], "participant_id": v["participant_id"],
        "question": v["question"], "split": v["split"],
        "duration_s": round(float(v["duration_s"] or 0.0), 1),
        "ah_fraction": None if view.labels is None or view.labels.size == 0
        else round(float(view.labels.mean()), 3),
        "face_coverage": None if view.face_coverage is None
        else round(view.face_coverage, 3),
        "words": len(view.words) if view.words else
        sum(len(str(c["text"] or "").split()) for c in view.transcript),
        "words_from": "asr" if view.words else "transcript",
        "quarantine": "; ".join(f"{q['stage']}: {q['reason']}" for q in view.quarantine),
        "score": None if view.run is None else round(float(view.run["score"]), 3),
    }
