"""Ingest a BAH release into the store's Parquet tables.

Consent is applied here, before anything else sees the data: participants without
the required consent are dropped from every table and listed (id, reason, number
of videos) in ``exclusions``. Videos are probed with ffprobe in parallel; a video
that cannot be read, or whose frame count disagrees with its annotation, is
quarantined (``quarantine`` table) and the rest of the release still lands.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl

from store import __version__
from store.backend import Store
from store.consent import WITHDREW, ConsentPolicy, consent_exclusions, subject_hash, withdrawn
from store.failures import Where, classify
from store.fault_points import fault_point
from store.local import as_store
from store.media import VideoInfo, probe_video
from store.release.ids import safe_relative
from store.release.reader import read_release
from store.schema import conform
from store.tables import utc_now


@dataclass(frozen=True)
class IngestReport:
    """What one ingest did."""

    store: str
    participants: int
    videos: int
    frames: int
    segments: int
    excluded: dict[str, str]  # participant id -> reason
    quarantined: dict[str, str]  # video id -> reason
    notes: tuple[str, ...] = ()  # what the reader found and reported (variant, unread keys)


def _probe_all(root: Path, videos: pl.DataFrame, workers: int
               ) -> tuple[dict[str, VideoInfo], dict[str, str], dict[str, str]]:
    """Probe every video: the videos read, and the input faults (reasons and kinds)
    found (:func:`store.failures.classify`); anything else (the machine's, a bug) is
    raised: the ingest fails as a whole and the batch stays pending."""
    def one(row: dict[str, Any]) -> tuple[str, VideoInfo | tuple[str, str]]:
        path = root / row["path"]
        try:
            # the top folder (Videos/) may be a link to another disk; nothing below may leave it
            top, *rest = PurePosixPath(row["path"]).parts
            path = safe_relative(root / top, str(PurePosixPath(*rest)), path=root,
                                 entry=row["release_id"])
            return row["video_id"], probe_video(path)
        except Exception as exc:
            fault = classify(exc, Where(file=path, source=root,
                                        participant=row["participant_id"],
                                        video=row["video_id"]))
            if fault.owner != "input":
                raise
            return row["video_id"], (fault.message, fault.kind)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, videos.iter_rows(named=True)))
    infos = {vid: r for vid, r in results if isinstance(r, VideoInfo)}
    failed = {vid: r[0] for vid, r in results if isinstance(r, tuple)}
    kinds = {vid: r[1] for vid, r in results if isinstance(r, tuple)}
    return infos, failed, kinds


def quarantine_rows(videos: pl.DataFrame, reasons: dict[str, str], stage: str,
                    kinds: dict[str, str] | None = None) -> pl.DataFrame:
    """Rows of the ``quarantine`` table for the ``videos`` named in ``reasons``
    (``kinds``: the input-fault kind of each, :data:`store.failures.INPUT_KINDS`)."""
    kinds = {v: (kinds or {}).get(v, "undecodable") for v in reasons}
    return videos.filter(pl.col("video_id").is_in(list(reasons))).select(
        "video_id", "participant_id", "path", pl.lit(stage).alias("stage"),
        pl.col("video_id").replace_strict(reasons, return_dtype=pl.String).alias("reason"),
        pl.col("video_id").replace_strict(kinds, return_dtype=pl.String).alias("kind"),
        pl.lit(utc_now()).alias("quarantined_at"))


def report_of(store: Store | Path, tables: dict[str, pl.DataFrame], quarantined: dict[str, str],
              notes: tuple[str, ...] = ()) -> IngestReport:
    """What the ingest ``tables`` hold, as a report."""
    videos = tables["videos"]
    return IngestReport(
        store=as_store(store).location, participants=tables["participants"].height,
        videos=videos.height,
        frames=int(videos["n_frames"].sum()) if videos.height else 0,
        segments=tables["segments"].height,
        excluded=dict(tables["exclusions"].select("participant_id", "reason").iter_rows()),
        quarantined=quarantined, notes=notes)


@dataclass(frozen=True)
class ReleaseTables:
    """Every ingest table of one release (or batch), consent and probing applied."""

    tables: dict[str, pl.DataFrame]
    quarantined: dict[str, str]  # video id -> reason
    frame_base: list[int]
    participant_ids: list[str]  # every participant of the release, consented or not
    video_ids: list[str]  # every video of the release, consented or not
    notes: tuple[str, ...]  # the variant found, keys not read, unlabelled videos


def build_tables(dataset: Path, store: Store | Path, policy: ConsentPolicy | None = None,
                 workers: int = 8) -> ReleaseTables:
    """Read, check, consent-filter and probe the release at ``dataset``."""
    policy = policy or ConsentPolicy()
    rel = read_release(Path(dataset))
    excl = consent_exclusions(rel.participants, policy, withdrawn(store))
    excluded_ids = excl["participant_id"].to_list()
    keep = ~pl.col("participant_id").is_in(excluded_ids)
    n_per_pid = rel.videos.group_by("participant_id").len("n_videos")
    exclusions = excl.join(n_per_pid, on="participant_id", how="left").with_columns(
        pl.col("n_videos").fill_null(0))

    videos = rel.videos.filter(keep)
    infos, failed, kinds = _probe_all(rel.root, videos, workers)
    frame_counts = dict(rel.frame_labels.filter(keep).group_by("video_id").len()
                        .iter_rows())
    unlabelled = set(rel.unlabelled["video_id"].to_list())  # labels withheld: no count
    for vid, info in list(infos.items()):
        if vid not in unlabelled and info.n_frames != frame_counts.get(vid):
            failed[vid] = (f"video has {info.n_frames} frames but its annotation labels "
                           f"{frame_counts.get(vid)}")
            kinds[vid] = "labels"
            del infos[vid]
    quarantine = quarantine_rows(videos, failed, "ingest", kinds)
    fault_point("ingest")  # crash tests (store.fault_points): read and probed, nothing written
    ok = pl.col("video_id").is_in(list(infos))
    probe = pl.DataFrame([{"video_id": v, "duration_s": i.duration_s, "fps": i.fps,
                           "n_frames": i.n_frames, "has_audio": i.has_audio}
                          for v, i in infos.items()],
                         schema={"video_id": pl.String, "duration_s": pl.Float64,
                                 "fps": pl.Float64, "n_frames": pl.Int32,
                                 "has_audio": pl.Boolean})
    videos = videos.join(probe, on="video_id", how="inner", maintain_order="left")
    transcripts = rel.transcripts
    if transcripts.width:  # the last chunk's missing end: the end of the video
        transcripts = transcripts.filter(keep & ok).join(
            videos.select("video_id", "duration_s"), on="video_id", how="left",
            maintain_order="left").with_columns(
            pl.coalesce("end_s", pl.max_horizontal("start_s", "duration_s")).alias("end_s"))
    videos = videos.with_columns(pl.lit(str(Path(rel.root).resolve())).alias("source"))
    tables = {
        "participants": rel.participants.filter(keep),
        "exclusions": exclusions,
        "videos": videos,
        "segments": rel.segments.filter(keep & ok) if rel.segments.width else rel.segments,
        "cues": rel.cues.filter(keep & ok) if rel.cues.width else rel.cues,
        "frame_labels": rel.frame_labels.filter(keep & ok),
        "transcripts": transcripts,
        "splits": rel.splits.filter(keep & ok),
        "quarantine": quarantine,
    }
    return ReleaseTables({k: conform(k, v) for k, v in tables.items()}, failed,
                         sorted(set(rel.frame_base.values())),
                         rel.participants["participant_id"].to_list(),
                         rel.videos["video_id"].to_list(),
                         (f"variant: {rel.layout.variant}; {'; '.join(rel.id_styles)}",
                          *rel.notes))


def drop_withdrawn(built: ReleaseTables, store: Store | Path) -> ReleaseTables:
    """``built`` without the participants who withdrew since it was read (a purge that
    ran while the release was being read, probed and its videos uploaded): they move
    to ``exclusions``, and whatever of theirs the store holds is removed again (an
    upload of :func:`upload_sources` may have finished after the purge). Call it
    holding the store lock, just before writing the tables."""
    gone = withdrawn(store)
    late = [p for p in built.tables["participants"]["participant_id"].to_list()
            if subject_hash(p) in gone]
    if not late:
        return built
    for pid in late:
        as_store(store).remove_participant(pid)
    theirs = pl.col("participant_id").is_in(late)
    tables = {name: df.filter(~theirs) if "participant_id" in df.columns else df
              for name, df in built.tables.items()}
    n_videos = pl.concat([built.tables[t].select("participant_id", "video_id")
                          for t in ("videos", "quarantine")]).filter(theirs).group_by(
        "participant_id").len("n_videos")
    moved = pl.DataFrame({"participant_id": late, "reason": WITHDREW}
                         ).join(n_videos, on="participant_id", how="left")
    tables["exclusions"] = conform("exclusions", pl.concat(
        [tables["exclusions"], moved.with_columns(pl.col("n_videos").fill_null(0))],
        how="diagonal_relaxed"))
    failed = set(tables["quarantine"]["video_id"].to_list())
    return replace(built, tables=tables,
                   quarantined={v: r for v, r in built.quarantined.items() if v in failed})


def upload_sources(store: Store, videos: pl.DataFrame) -> int:
    """Hand every video of ``videos`` (a videos table: what ingest records as
    extractable) to the store's :meth:`~store.backend.Store.put_source`, so that
    workers which cannot see the release still read it; how many were copied
    (none for a folder store, none already there). Called before the store lock is
    taken (an upload of a whole release would hold it for its length); the tables
    that name the videos are written after it, and :func:`drop_withdrawn` removes a
    withdrawal's uploads again."""
    return sum(store.put_source(pid, vid, Path(src) / rel)
               for pid, vid, src, rel in videos.select(
                   "participant_id", "video_id", "source", "path").iter_rows())


def write_ingest_manifest(store: Store | Path, source: str | list[str],
                          policy: ConsentPolicy, frame_base: list[int],
                          notes: tuple[str, ...] = ()) -> IngestReport:
    """Summarise the tables now in ``store`` into its manifest; return the report."""
    st = as_store(store)
    tables = {n: st.read_table(n)
              for n in ("videos", "participants", "segments", "exclusions", "quarantine")}
    quarantine = tables["quarantine"].filter(pl.col("stage") == "ingest")
    report = report_of(st, tables, dict(quarantine.select("video_id", "reason").iter_rows()),
                       notes)
    st.write_manifest({
        "bahfs_version": __version__, "dataset": source,
        "ingested_at": utc_now(),
        "consent_required": list(policy.require), "participants": report.participants,
        "videos": report.videos, "frames": report.frames, "segments": report.segments,
        "excluded": report.excluded, "quarantined": report.quarantined,
        "frame_numbering_base": frame_base, "notes": list(notes),
    })
    return report


def ingest(dataset: Path, store: Store | Path, policy: ConsentPolicy | None = None,
           workers: int = 8) -> IngestReport:
    """Read the release at ``dataset`` and (re)write every ingest table under ``store``.

    The tables are replaced whole; :func:`flows.batches.ingest_batch` merges a batch
    into what is there instead.
    """
    policy = policy or ConsentPolicy()
    st = as_store(store)
    built = build_tables(dataset, st, policy, workers)
    upload_sources(st, built.tables["videos"])  # before the tables name the videos
    with st.lock():
        built = drop_withdrawn(built, st)
        for name, df in built.tables.items():
            st.write_table(name, df)
        return write_ingest_manifest(st, str(Path(dataset).resolve()), policy,
                                     built.frame_base, built.notes)
