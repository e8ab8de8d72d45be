"""Which variant of the BAH release a folder holds: found, never configured.

Three annotation files are in circulation (the 2026 release's
``video_annotation_transcript.yaml``, the official code's ``video_annotation.yaml``,
the 2025 challenge's four-key ``annotation.yml``) and two places for the splits
(the release's ``split/``, the official repository's
``dataset-splits/video-level/BAH_DB/split-0/``). :func:`detect_layout` looks at
what is there and says which it found; two annotation files at once, or none, is
an error naming what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from store.errors import DatasetLayoutError
from store.release import codebook as cb

#: annotation file -> (variant name, keys every entry must carry)
ANNOTATION_VARIANTS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    cb.ANNOTATIONS_YAML: ("BAH release (video_annotation_transcript.yaml)", cb.ANNOTATION_KEYS),
    cb.OFFICIAL_ANNOTATIONS_YAML: ("official code (video_annotation.yaml)", cb.CORE_KEYS),
    cb.CHALLENGE_ANNOTATIONS_YAML: ("2025 challenge (annotation.yml, four keys)", cb.CORE_KEYS),
}


@dataclass(frozen=True)
class ReleaseLayout:
    """Where a release keeps each part, as found on disk."""

    root: Path
    annotations: Path
    required_keys: tuple[str, ...]
    splits: Path  # folder of {train,val,test}.txt
    frame_splits: Path | None
    labels_csv: Path | None
    class_ids: Path | None
    notes: tuple[str, ...]  # what was found beside the chosen parts and left unread

    @property
    def variant(self) -> str:
        name = ANNOTATION_VARIANTS[self.annotations.name][0]
        where = self.splits.relative_to(self.root).as_posix()
        return f"{name}, splits in {where}/"

    def describe(self) -> list[str]:
        """One line per part: what bahfs reads from this release."""
        def rel(p: Path | None) -> str:
            return p.relative_to(self.root).as_posix() if p else "absent"

        return [f"annotations: {rel(self.annotations)} (keys required: "
                f"{', '.join(self.required_keys)})",
                f"video splits: {rel(self.splits)}/", f"video labels: {rel(self.labels_csv)}",
                f"frame splits: {rel(self.frame_splits)}"
                + (" (not read: frame labels come from frame_annotation)"
                   if self.frame_splits else ""),
                f"class ids: {rel(self.class_ids)}"]


def _first_dir(root: Path, *names: str) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def detect_layout(root: Path) -> ReleaseLayout:
    """Recognise the variant of the release at ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError("dataset directory not found", path=root,
                                 expected="a BAH release directory")
    found = [root / n for n in ANNOTATION_VARIANTS if (root / n).is_file()]
    if not found:
        raise DatasetLayoutError("no annotation file at the release root", path=root,
                                 expected="one of " + ", ".join(ANNOTATION_VARIANTS))
    if len(found) > 1:
        raise DatasetLayoutError(
            "several annotation files: " + ", ".join(p.name for p in found), path=root,
            expected="exactly one of " + ", ".join(ANNOTATION_VARIANTS))
    notes: list[str] = []
    splits = _first_dir(root, cb.SPLIT_DIR, cb.OFFICIAL_SPLIT_DIR)
    if splits is None:
        raise DatasetLayoutError("no split folder", path=root,
                                 expected=f"{cb.SPLIT_DIR}/ or {cb.OFFICIAL_SPLIT_DIR}/ "
                                          "holding train.txt, val.txt, test.txt")
    if splits == root / cb.SPLIT_DIR and (root / cb.OFFICIAL_SPLIT_DIR).is_dir():
        notes.append(f"{cb.OFFICIAL_SPLIT_DIR}/ is not read: the release's own "
                     f"{cb.SPLIT_DIR}/ takes precedence")
    frame_splits = _first_dir(root, cb.SPLIT_FRAMES_DIR, cb.OFFICIAL_FRAME_SPLIT_DIR)
    labels = root / cb.VIDEO_LABELS_CSV
    # class ids come with the official splits (beside the frame-level or video-level files)
    official = splits == root / cb.OFFICIAL_SPLIT_DIR
    class_ids = next((p for p in (root / cb.OFFICIAL_FRAME_SPLIT_DIR / cb.CLASS_ID_YAML,
                                  splits / cb.CLASS_ID_YAML) if official and p.is_file()),
                     None)
    return ReleaseLayout(root, found[0], ANNOTATION_VARIANTS[found[0].name][1], splits,
                         frame_splits, labels if labels.is_file() else None, class_ids,
                         tuple(notes))
