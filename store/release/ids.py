"""Video and frame references of a BAH release, in every spelling in circulation.

The release keys a video by its path from the release root, ``Videos/`` included
(``Videos/82553/Visite_1/82553_Question_1_2024-10-02 15-46-17_Video.mp4``). Older
copies drop ``Videos/`` and spell the visit ``Visite 1``; some file names carry a
device suffix (``..._Video-DESKTOP-NQ55E0P.mp4``) and one copy separates its words
with spaces (``82557 Question 5 2024-08-22 14-48-26 Video.mp4``). Every spelling
of one video maps to the same store id ``<pid>__Visite_<n>__Q<q>``, a safe
directory name; the release's own spelling is kept beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from store.errors import DatasetLayoutError, PathEscapeError
from store.release import codebook as cb

#: the file name: ``<pid>_Question_<q>_<date time...>Video[-<device>].<ext>``, words
#: separated by ``_`` or a space, case-insensitive (as readers of the real files do)
VIDEO_EXTENSIONS = ("mp4", "webm", "mov", "avi", "mkv")
VIDEO_FILE_RE = re.compile(
    r"^(?P<pid>[^_ /]+)[_ ]Question[_ ](?P<q>\d+)[_ ](?P<rest>.*?Video[^/]*)"
    rf"\.(?P<ext>{'|'.join(VIDEO_EXTENSIONS)})$", re.IGNORECASE)
VISIT_RE = re.compile(r"^Visite[_ ](?P<n>\d+)$", re.IGNORECASE)
VIDEO_REF_FORM = ("[Videos/]<pid>/Visite_<n>/<pid>_Question_<1-7>_<date time>_Video[-<device>]"
                  ".mp4 (words separated by '_' or spaces)")
FRAME_NAME_RE = re.compile(r"^frame-(?P<n>\d+)\.(?:jpg|jpeg|png)$")


@dataclass(frozen=True)
class VideoKey:
    """Identity of one video, parsed from the release's reference to it."""

    video_id: str  # store id: <pid>__Visite_<n>__Q<q>
    participant_id: str
    visit: str  # canonical: Visite_<n>
    question: int
    ref: str  # the reference as the release spells it
    name: str  # the file name
    prefixed: bool  # the reference starts with Videos/

    @property
    def style(self) -> str:
        """How the release spelled this reference (for the variant report)."""
        visit = PurePosixPath(self.ref).parts[-2]
        return (("ids with 'Videos/'" if self.prefixed else "ids without 'Videos/'")
                + f", visit spelled {visit!r}")


def parse_video_ref(ref: str, *, path: Path) -> VideoKey:
    """Parse a video reference as any known variant spells it; raise naming ``path``."""
    text = ref.strip()
    pure = PurePosixPath(text)
    if ".." in pure.parts or pure.is_absolute() or text.startswith(("\\", "~")):
        raise PathEscapeError(f"video path {ref!r} leaves the release", path=path,
                              expected="a path inside the release root")
    parts = pure.parts
    prefixed = bool(parts) and parts[0] == cb.VIDEOS_DIR
    if prefixed:
        parts = parts[1:]
    m = VIDEO_FILE_RE.match(parts[-1]) if len(parts) == 3 else None
    visit = VISIT_RE.match(parts[1]) if len(parts) == 3 else None
    if m is None or visit is None or m["pid"] != parts[0] or not 1 <= int(m["q"]) <= 7:
        raise DatasetLayoutError(f"video path {ref!r} does not follow the release naming",
                                 path=path, expected=VIDEO_REF_FORM)
    pid, q = parts[0], int(m["q"])
    canon_visit = f"Visite_{int(visit['n'])}"
    return VideoKey(f"{pid}__{canon_visit}__Q{q}", pid, canon_visit, q, text, parts[-1],
                    prefixed)


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


def frame_number(frame_id: object, prefix: str) -> int | None:
    """The ``n`` of ``<prefix>frame-<n>.jpg``, or None if ``frame_id`` is not that form."""
    if not isinstance(frame_id, str) or not frame_id.startswith(prefix):
        return None
    m = FRAME_NAME_RE.match(frame_id[len(prefix):])
    return int(m["n"]) if m else None


def frame_prefix(first_frame_id: object, key: VideoKey, *, path: Path) -> str:
    """The ``<video ref>/`` that starts every frame id of ``key``'s video.

    Taken from the first frame id and checked to name the same video (any known
    spelling); later frame ids must start with exactly the same text.
    """
    text = first_frame_id if isinstance(first_frame_id, str) else ""
    video_part, sep, name = text.rpartition("/")
    ok = bool(sep) and FRAME_NAME_RE.match(name) is not None
    if ok:
        try:
            other = parse_video_ref(video_part, path=path)
        except DatasetLayoutError:
            ok = False
        else:
            ok = other.video_id == key.video_id and other.name == key.name
    if not ok:
        raise DatasetLayoutError(
            f"entry {key.ref!r}: bad frame id {first_frame_id!r}", path=path,
            participant=key.participant_id, video=key.video_id,
            expected=f"{key.ref}/frame-<n>.jpg")
    return video_part + "/"


def video_file(root: Path, key: VideoKey) -> str:
    """Where ``key``'s video lies, relative to ``root`` (first spelling that exists).

    Tries the reference as given, then under ``Videos/``, each with the visit
    folder spelled ``Visite_<n>`` and ``Visite <n>``. If none exists the reference
    under ``Videos/`` is returned (the probe then reports the file missing).
    """
    parts = [key.participant_id, key.visit, key.name]
    visits = dict.fromkeys([PurePosixPath(key.ref).parts[-2], key.visit,
                            key.visit.replace("_", " ")])
    heads = [cb.VIDEOS_DIR] if key.prefixed else ["", cb.VIDEOS_DIR]
    candidates = [str(PurePosixPath(h, parts[0], v, parts[2])) if h
                  else str(PurePosixPath(parts[0], v, parts[2]))
                  for h in heads for v in visits]
    for rel in candidates:
        if (root / rel).is_file():
            return rel
    return str(PurePosixPath(cb.VIDEOS_DIR, parts[0], PurePosixPath(key.ref).parts[-2],
                             key.name))
