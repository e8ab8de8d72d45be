"""Write the annotation files of a sample release, in each variant in circulation.

``release`` (the default) is the BAH release as it ships: video ids are paths from
the release root with ``Videos/`` (``Videos/82553/Visite_1/82553_Question_1_2024-03-05
10-00-17_Video.mp4``), frame ids ``<video id>/frame-<n>.jpg`` numbered from 0,
``bah-video.csv`` with a header row, ``split/`` and ``split-frames/``, one
transcription folder per video named like the video (extension included) with
Whisper chunk times that restart with each 30 s window. ``official`` is the same
under the official code's names (``video_annotation.yaml``, splits in
``dataset-splits/.../split-0/`` with ``class_id.yaml``). ``challenge-2025`` is the
2025 challenge's four-key ``annotation.yml`` with ids without ``Videos/``, the
visit spelled ``Visite 1``, frames numbered from 1, no header row and no
transcription files.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path, PurePosixPath
from typing import Any, Final, Literal, get_args

import numpy as np
import yaml

from bahfs.sample.jobs import VideoJob
from store.release import codebook as cb
from store.release.yamlio import dump_yaml

Variant = Literal["release", "official", "challenge-2025"]
VARIANTS: Final[tuple[str, ...]] = get_args(Variant)
WHISPER_WINDOW_S: Final = 30.0


class _TupleDumper(yaml.SafeDumper):
    """Safe dumper that writes tuples with the ``!!python/tuple`` tag, as Whisper files do."""


_TupleDumper.add_representer(
    tuple, lambda d, v: d.represent_sequence("tag:yaml.org,2002:python/tuple", list(v)))


def video_ref(job: VideoJob, variant: Variant) -> str:
    """The video id as the variant spells it (annotation key, split line)."""
    if variant == "challenge-2025":
        return f"{job.pid}/Visite 1/{job.name}"
    return f"{cb.VIDEOS_DIR}/{job.pid}/Visite_1/{job.name}"


def video_path(job: VideoJob, variant: Variant) -> str:
    """Where the variant keeps the video file, relative to the release root."""
    if variant == "challenge-2025":
        return f"{cb.VIDEOS_DIR}/{job.pid}/Visite 1/{job.name}"
    return video_ref(job, variant)


def _hms(seconds: float) -> str:
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h):02d}:{int(m):02d}:{s:06.3f}"


def annotation(job: VideoJob, annotator: str, variant: Variant) -> dict[str, Any]:
    """One video's annotation entry."""
    plan, ref = job.plan, video_ref(job, variant)
    base = 1 if variant == "challenge-2025" else 0
    labels = np.zeros(plan.n_frames, dtype=np.int8)
    fr, tm, cues, cert = [], [], [], []
    for seg in plan.segments:
        s, e = plan.frame_of(seg.start_s), plan.frame_of(seg.end_s)
        labels[s:e + 1] = 1
        fr.append([s + base, e + base])
        tm.append([_hms(seg.start_s), _hms(seg.end_s)])
        cues.append({k: list(v) for k, v in seg.cues.items()})
        cert.append(seg.certainty)
    frames = [[f"{ref}/frame-{i + base}.jpg", int(v)] for i, v in enumerate(labels)]
    if variant == "challenge-2025":
        return {"fr_detailed_ah": fr, "frame_annotation": frames,
                "global_ah": int(bool(plan.segments)), "time_detailed_ah": tm}
    return {
        "global_ah": int(bool(plan.segments)), "annotator_id": annotator,
        "certainty_ah": cert, "fr_detailed_ah": fr, "time_detailed_ah": tm, "all_cues": cues,
        "frame_annotation": frames,
        "transcript": " ".join(u.text for u in plan.utterances),
    }


def whisper_chunks(job: VideoJob, open_end: bool) -> list[dict[str, Any]]:
    """Chunks as Whisper writes them: times relative to the window being decoded.

    Decoding is sequential: a window holds the utterances that end within 30 s of
    its start, and the next window starts where its last chunk ended. With
    ``open_end`` the last chunk's end is ``None``.
    """
    chunks: list[dict[str, Any]] = []
    window_start, last_end = 0.0, 0.0
    for u in job.plan.utterances:
        if u.end_s > window_start + WHISPER_WINDOW_S:
            window_start = last_end
        chunks.append({"language": "en", "text": f" {u.text}",
                       "timestamp": (round(u.start_s - window_start, 2),
                                     round(u.end_s - window_start, 2))})
        last_end = u.end_s
    if open_end and chunks:
        chunks[-1]["timestamp"] = (chunks[-1]["timestamp"][0], None)
    return chunks


def _transcription(job: VideoJob, open_end: bool) -> str:
    doc = {"text": " " + " ".join(u.text for u in job.plan.utterances),
           "chunks": whisper_chunks(job, open_end)}
    return yaml.dump(doc, Dumper=_TupleDumper, sort_keys=False, width=1000)


def write_release_files(root: Path, meta: dict[str, dict[str, Any]], splits: dict[str, str],
                        jobs: list[VideoJob], variant: Variant) -> None:
    """Write every annotation file of ``variant`` (deterministic bytes)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / cb.META_YML).write_text(dump_yaml(meta), encoding="utf-8")
    anns = {video_ref(job, variant): annotation(job, f"A{(i % 3) + 1}", variant)
            for i, job in enumerate(jobs)}
    name = {"release": cb.ANNOTATIONS_YAML, "official": cb.OFFICIAL_ANNOTATIONS_YAML,
            "challenge-2025": cb.CHALLENGE_ANNOTATIONS_YAML}[variant]
    (root / name).write_text(dump_yaml(anns), encoding="utf-8")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if variant != "challenge-2025":
        writer.writerow(["video-path", "class"])
    for ref, ann in anns.items():
        writer.writerow([ref, ann["global_ah"]])
    (root / cb.VIDEO_LABELS_CSV).write_text(buf.getvalue(), encoding="utf-8")
    split_dir, frame_dir = ((cb.OFFICIAL_SPLIT_DIR, cb.OFFICIAL_FRAME_SPLIT_DIR)
                            if variant == "official" else (cb.SPLIT_DIR, cb.SPLIT_FRAMES_DIR))
    for d in (split_dir, frame_dir):
        (root / d).mkdir(parents=True, exist_ok=True)
    if variant == "official":
        (root / frame_dir / cb.CLASS_ID_YAML).write_text("With A-H: 1\nNo A-H: 0",
                                                         encoding="utf-8")
    by_ref = {video_ref(job, variant): job for job in jobs}
    for split in ("train", "val", "test"):
        lines: list[str] = []
        frame_lines: list[str] = []
        for ref, ann in anns.items():
            if splits[by_ref[ref].pid] != split:
                continue
            text = " ".join(u.text for u in by_ref[ref].plan.utterances)
            lines.append(f"{ref},{ann['global_ah']},{text}")
            frame_lines.extend(f"{fid},{lab}" for fid, lab in ann["frame_annotation"])
        (root / split_dir / f"{split}.txt").write_text("\n".join(lines) + "\n", "utf-8")
        (root / frame_dir / f"{split}.txt").write_text("\n".join(frame_lines) + "\n", "utf-8")
    if variant == "challenge-2025":
        return
    for i, job in enumerate(jobs):
        ref = video_ref(job, variant)
        folder = root / cb.TRANSCRIPTION_DIR / ref
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{PurePosixPath(ref).stem}.yml").write_text(
            _transcription(job, open_end=i % 3 == 0), encoding="utf-8")
