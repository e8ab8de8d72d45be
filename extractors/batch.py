"""Extract every ingested (consented) video of a release into the store, one video at
a time: the per-video job that the Prefect flow of issue 5 will schedule as tasks.

A video already present in every chosen feature set is skipped; a video that
fails to decode or extract is quarantined (``quarantine`` table, stage
``extract``) and the rest still land. Features are written atomically per video.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from bahfs.errors import BahfsError
from bahfs.release import codebook as cb
from extractors.base import Extractor
from extractors.pipeline import extract_all
from store.catalog import refresh_catalog
from store.tables import read_table, write_table
from store.writer import FeatureWriter


@dataclass
class ExtractReport:
    extracted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)
    frames: int = 0


def extract_one(dataset: Path, writer: FeatureWriter, extractors: list[Extractor],
                video_id: str, participant_id: str, rel_path: str, n_frames: int) -> int:
    """Decode once, run every extractor, check the frame count against the videos
    table, then publish each feature set; return the frames."""
    path = Path(dataset) / cb.VIDEOS_DIR / rel_path
    feats = extract_all(path, extractors, video_id=video_id, participant_id=participant_id)
    if feats[0].n_frames != n_frames:
        raise BahfsError(f"decoded {feats[0].n_frames} frames, the videos table says "
                         f"{n_frames}", path=path, participant=participant_id,
                         video=video_id, expected=f"{n_frames} frames")
    for f in feats:
        writer.write(f)
    return feats[0].n_frames


def extract_release(dataset: Path, store: Path, extractors: list[Extractor],
                    progress: Callable[[str], None] | None = None) -> ExtractReport:
    """Extract every video of the store's ``videos`` table not yet fully extracted."""
    writer = FeatureWriter(store)
    specs = [e.spec().id for e in extractors]
    videos = read_table(store, "videos")
    report = ExtractReport()
    for vid, pid, rel, n in videos.select("video_id", "participant_id", "path",
                                          "n_frames").iter_rows():
        if all(writer.exists(fs, pid, vid) for fs in specs):
            report.skipped.append(vid)
            continue
        try:
            frames = extract_one(dataset, writer, extractors, vid, pid, rel, n)
            report.extracted.append(vid)
            report.frames += frames
        except BahfsError as exc:
            report.quarantined[vid] = exc.message
        if progress:
            done = len(report.extracted) + len(report.skipped) + len(report.quarantined)
            progress(f"[{done}/{videos.height}] {vid}")
    if report.quarantined:
        q = read_table(store, "quarantine")
        new = videos.filter(pl.col("video_id").is_in(list(report.quarantined))).select(
            "video_id", "participant_id", "path", pl.lit("extract").alias("stage"),
            pl.col("video_id").replace_strict(report.quarantined, return_dtype=pl.String)
            .alias("reason"))
        write_table(store, "quarantine", pl.concat([q, new]).unique(["video_id", "stage"],
                                                                    keep="last"))
    refresh_catalog(store)
    return report
