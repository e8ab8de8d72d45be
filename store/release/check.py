"""``bahfs check-release``: read a whole release, write nothing, say what is there.

The plan before the apply: the variant found, counts per split beside the paper's
figures, the files on disk without an annotation and the annotations without a
file, and every problem, one line each. Ingest succeeds exactly when there is no
problem (missing or unannotated files are reported, not problems: ingest
quarantines or ignores them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from store.errors import DatasetLayoutError
from store.release import codebook as cb
from store.release.ids import VIDEO_EXTENSIONS
from store.release.reader import Release, read_release

#: the paper's Table 2 and the current release's split files (778 / 124 / 525 videos)
PAPER: Final[dict[str, dict[str, int | None]]] = {
    "train": {"participants": 195, "videos": 778, "frames": None, "ah_videos": None,
              "ah_frames": None},
    "val": {"participants": 30, "videos": 124, "frames": None, "ah_videos": None,
            "ah_frames": None},
    "test": {"participants": 75, "videos": 525, "frames": None, "ah_videos": None,
             "ah_frames": None},
    "all": {"participants": 300, "videos": 1427, "frames": 916_618, "ah_videos": 778,
            "ah_frames": 156_255},
}


@dataclass(frozen=True)
class ReleaseCheck:
    """What ``check-release`` found."""

    release: Release | None  # None when the release could not be read at all
    counts: pl.DataFrame  # split, measure, found, paper
    missing_files: list[str]  # annotated videos whose file is not there
    unannotated_files: list[str]  # video files under the release with no annotation
    problems: list[str]

    @property
    def ok(self) -> bool:
        """Ingest would succeed."""
        return not self.problems


def split_counts(rel: Release) -> pl.DataFrame:
    """Participants, videos, frames, A/H videos and frames per split, with the paper's."""
    per_video = rel.frame_labels.group_by("video_id").agg(
        pl.len().alias("frames"), pl.col("label").cast(pl.Int64).sum().alias("ah_frames"))
    videos = rel.videos.join(per_video, on="video_id", how="left")
    rows: list[dict[str, object]] = []
    for split in ("train", "val", "test", "all"):
        part = videos if split == "all" else videos.filter(pl.col("split") == split)
        found = {"participants": part["participant_id"].n_unique(), "videos": part.height,
                 "frames": int(part["frames"].sum()),
                 "ah_videos": int(part["global_label"].cast(pl.Int64).sum()),
                 "ah_frames": int(part["ah_frames"].sum())}
        rows.extend({"split": split, "measure": m, "found": v, "paper": PAPER[split][m]}
                    for m, v in found.items())
    return pl.DataFrame(rows, schema={"split": pl.String, "measure": pl.String,
                                      "found": pl.Int64, "paper": pl.Int64})


def _video_files(root: Path) -> set[str]:
    base = root / cb.VIDEOS_DIR
    if not base.is_dir():
        return set()
    return {p.relative_to(root).as_posix() for p in base.rglob("*")
            if p.suffix.lower().lstrip(".") in VIDEO_EXTENSIONS and p.is_file()}


def check_release(root: Path) -> ReleaseCheck:
    """Read everything under ``root`` and report; never raises for a bad release."""
    root = Path(root)
    try:
        rel = read_release(root, collect=True)
    except DatasetLayoutError as exc:
        return ReleaseCheck(None, pl.DataFrame(), [], [], [str(exc)])
    annotated = set(rel.videos["path"].to_list())
    missing = sorted(p for p in annotated if not (root / p).is_file())
    unannotated = sorted(_video_files(root) - annotated)
    return ReleaseCheck(rel, split_counts(rel), missing, unannotated,
                        [str(p) for p in rel.problems])
