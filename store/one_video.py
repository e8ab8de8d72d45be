"""Stores of videos outside any release: what ``bahfs extract-video VIDEO --out OUT``
writes.

Such a store is an ordinary store (``docs/store.md``), so :class:`store.reader.
FeatureReader`, ``bahfs verify``, ``bahfs status`` and plain xarray read it as they
read any other. Every feature set is published by :class:`store.writer.FeatureWriter`
(atomically, one group per feature set, the transcript and provenance in the video's
attributes), and the tables hold what a reader needs:

* ``videos``: one row per video: its ids, the file (``path``, the file name, in
  ``source``, its folder), duration, frame rate and sound from ffprobe, and
  ``n_frames``, the decoded frame count (every array's first dimension); no visit,
  question, release id, label or split, since it belongs to no release;
* ``participants``: one row per participant, without demographics or consent (none
  is known);
* the other tables ``bahfs ingest`` writes, empty where nothing was there
  (``store.schema.INGEST_TABLES``: no segments, cues, frame labels, release
  transcripts, splits, exclusions or quarantine);
* ``featuresets``, ``extracted`` and ``asr_words``: the catalog, refreshed once the
  video is published.

Ids: by default both the video id and the participant id are the file's name
without its extension, characters other than letters, digits, ``_``, ``-`` and
``.`` made ``_`` (``My clip (2).mp4`` is ``My_clip_2``); ``--video-id`` and
``--participant`` choose others. Every id must be a safe store name
(:func:`store.layout.check_name`).

A store ingested from a release is refused (its tables are the release's). A video
id the store holds already is the same video only when it names the same file, for
the same participant, with the same decoded frame count: then nothing is added twice
(the tables keep one row, the published feature sets are kept, a new feature set is
published beside them); anything else is refused. Another video (another id) joins
the store beside the first.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from store.backend import Store
from store.catalog import refresh_catalog
from store.consent import subject_hash, withdrawn
from store.errors import ConfigError, ConsentError, NotFoundError, StoreError
from store.features import VideoFeatures
from store.layout import check_name
from store.local import LocalStore
from store.location import store_to_write
from store.media import VideoInfo, probe_video
from store.schema import INGEST_TABLES, empty
from store.writer import FeatureWriter, WriteResult

__all__ = ["VideoOutsideRelease", "describe_video", "one_video_store", "publish_video"]

#: characters a file name may keep in an id; every run of others becomes one ``_``
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")
#: the command-line option that sets each id (named in errors)
_OPTIONS = {"video_id": "--video-id", "participant_id": "--participant"}


class VideoOutsideRelease(BaseModel):
    """One video file outside any release, with the ids it is stored under."""

    model_config = ConfigDict(frozen=True)

    file: Path
    video_id: str
    participant_id: str

    @field_validator("video_id", "participant_id")
    @classmethod
    def _safe(cls, value: str) -> str:
        return check_name("id", value)

    @field_validator("file")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.resolve()


def id_from_file(file: Path) -> str:
    """The default id of ``file``: its name without the extension, made a safe name."""
    name = re.sub(r"\.{2,}", ".", _UNSAFE.sub("_", Path(file).stem)).strip("._-")[:128]
    if not name:
        raise ConfigError(f"the file name {Path(file).name!r} gives no usable id",
                          path=file, expected="--video-id and --participant "
                                              "(letters, digits, '_', '-', '.')")
    return name.rstrip("._-")


def describe_video(file: Path, *, participant_id: str | None = None,
                   video_id: str | None = None) -> VideoOutsideRelease:
    """``file`` with its ids: those given, else :func:`id_from_file` for both. A bad
    id is a ConfigError naming its option."""
    vid = video_id or id_from_file(file)
    try:
        return VideoOutsideRelease(file=Path(file), video_id=vid,
                                   participant_id=participant_id or vid)
    except ValidationError as exc:
        err = exc.errors()[0]
        option = _OPTIONS.get(str(err["loc"][0]), str(err["loc"][0]))
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{option}: {msg}", path=file,
                          expected="letters, digits, '_', '-', '.'; no '..'") from exc


def _holds_a_release(st: Store) -> bool:
    try:
        st.read_manifest()  # written by every ingest
        return True
    except NotFoundError:
        pass
    videos = st.read_table_or_empty("videos")
    return videos["release_id"].is_not_null().any()


def _same_video(st: Store, video: VideoOutsideRelease) -> None:
    """Refuse ``video`` when the store holds its id for another file or participant,
    or its participant withdrew."""
    if subject_hash(video.participant_id) in withdrawn(st):
        raise ConsentError("participant withdrew from this store; not stored",
                           path=st.location, participant=video.participant_id,
                           video=video.video_id)
    there = st.read_table_or_empty("videos").filter(pl.col("video_id") == video.video_id)
    for pid, source, rel in there.select("participant_id", "source", "path").iter_rows():
        if pid != video.participant_id or Path(source) / rel != video.file:
            raise StoreError(
                f"video id {video.video_id!r} in {st.location} is {Path(source) / rel} "
                f"of participant {pid!r}, not {video.file} of {video.participant_id!r}",
                path=video.file, video=video.video_id,
                expected="another --video-id, or another --out")


def one_video_store(out: Path, video: VideoOutsideRelease) -> Store:
    """The store at ``out`` to add ``video`` to: a missing or empty folder (nothing is
    made yet), or a store written by ``bahfs extract-video``. Checked before anything
    is extracted: a folder holding anything else, a store of a release, and an id
    the store holds for another file are refused."""
    st = LocalStore(store_to_write(Path(out)))
    if _holds_a_release(st):
        raise StoreError(f"{out} is a store ingested from a release; videos outside a "
                         "release are not added to it", path=out,
                         expected="a new or empty folder, or a store `bahfs "
                                  "extract-video` wrote")
    _same_video(st, video)
    return st


def _video_row(video: VideoOutsideRelease, info: VideoInfo, n_frames: int) -> pl.DataFrame:
    row = {"video_id": video.video_id, "participant_id": video.participant_id,
           "path": video.file.name, "source": str(video.file.parent),
           "duration_s": info.duration_s, "fps": info.fps, "n_frames": n_frames,
           "has_audio": info.has_audio}
    return pl.DataFrame([row], schema=empty("videos").schema)


def _check_frames(st: Store, video: VideoOutsideRelease, features: list[VideoFeatures]
                  ) -> int:
    """The decoded frame count, the same for every feature set and for the video's row
    already in the store (else the file changed since it was stored: refused)."""
    counts = {f.n_frames for f in features}
    ids = {(f.participant_id, f.video_id) for f in features}
    if len(counts) != 1 or ids != {(video.participant_id, video.video_id)}:
        raise StoreError(f"features of {video.file} disagree: frames {sorted(counts)}, "
                         f"ids {sorted(ids)}", path=video.file, video=video.video_id,
                         expected="one decode of one video")
    n = counts.pop()
    stored = st.read_table_or_empty("videos").filter(pl.col("video_id") == video.video_id)
    if stored.height and stored["n_frames"][0] != n:
        raise StoreError(f"{video.file} decodes to {n} frames; {st.location} holds it "
                         f"with {stored['n_frames'][0]}: the file changed", path=video.file,
                         video=video.video_id, expected="another --video-id, or another --out")
    return n


def _write_tables(st: Store, video: VideoOutsideRelease, info: VideoInfo, n: int) -> None:
    """The video's row (replacing its own), its participant, the other ingest tables."""
    videos = st.read_table_or_empty("videos").filter(pl.col("video_id") != video.video_id)
    st.write_table("videos", pl.concat([videos, _video_row(video, info, n)]))
    people = st.read_table_or_empty("participants")
    if video.participant_id not in people["participant_id"].to_list():
        row = pl.DataFrame([{"participant_id": video.participant_id}],
                           schema=empty("participants").schema)
        st.write_table("participants", pl.concat([people, row]))
    for name in INGEST_TABLES:
        if not st.table_exists(name):
            st.write_table(name, empty(name))


def publish_video(st: Store, video: VideoOutsideRelease, features: list[VideoFeatures]
                  ) -> list[WriteResult]:
    """Add ``video`` with its ``features`` (one decode of it) to ``st``: the tables
    first, under the store's lock (a crash before the features leaves the video
    pending, never an orphan), then each feature set through :class:`FeatureWriter`
    (a feature set already published is kept), then the catalog."""
    n = _check_frames(st, video, features)
    info = probe_video(video.file)
    with st.lock():
        _same_video(st, video)  # again: another run may have added the id meanwhile
        _write_tables(st, video, info, n)
    writer = FeatureWriter(st)
    results = [writer.write(f) for f in features]
    with st.lock():
        refresh_catalog(st)
    return results
