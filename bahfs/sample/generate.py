"""Generate a sample dataset in the BAH release layout.

Annotations (YAML, CSV, split files) depend only on the seed and options: the same
seed gives the same bytes. Videos are rendered in parallel worker processes; each
video file is written atomically. A ground-truth sidecar ``bahfs_truth.json`` at the
root records what the generator drew (face visible per frame, utterance times), for
tests of the extractors; readers of the release ignore it.
"""

from __future__ import annotations

import csv
import io
import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

from bahfs.errors import SampleDataError
from bahfs.release import codebook as cb
from bahfs.release.yamlio import dump_yaml
from bahfs.sample.render import Appearance, write_video
from bahfs.sample.script import MIN_SECONDS, VideoPlan, plan_video

TRUTH_FILE = "bahfs_truth.json"

_PROVINCES = ("Quebec", "Ontario", "British Columbia", "Alberta", "Manitoba",
              "Saskatchewan", "Nova Scotia", "New Brunswick", "Newfoundland and Labrador")
_COUNTRIES = ("Canada", "France", "India", "China", "Morocco", "Brazil", "Philippines")
_ETHNICITY = (("White", "White"), ("South Asian", "Asian"), ("Chinese", "Asian"),
              ("Black", "Black"), ("Arab", "Other"), ("Latin American", "Other"))
_GENDERS = ("Female", "Male", "Non-binary")
_AGE_RANGES = ((18, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, 80))


class SampleConfig(BaseModel):
    """Options of the sample generator (validated at the boundary)."""

    model_config = ConfigDict(frozen=True)

    participants: int = Field(ge=1, le=1000)
    first_participant: int = Field(default=1, ge=1, le=9000)  # ids P<first>.. (batches)
    seed: int = 0
    max_questions: int = Field(default=7, ge=1, le=7)
    max_seconds: float = Field(default=30.0, ge=MIN_SECONDS, le=120.0)
    fps: float = Field(default=24.0, gt=0, le=120)
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    ah_rate: float = Field(default=0.55, ge=0.0, le=1.0)


@dataclass(frozen=True)
class VideoJob:
    """One video to render."""

    rel: str  # path relative to Videos/
    plan: VideoPlan
    appearance: Appearance
    seed: int


class _TupleDumper(yaml.SafeDumper):
    """Safe dumper that writes tuples with the ``!!python/tuple`` tag, as Whisper files do."""


_TupleDumper.add_representer(
    tuple, lambda d, v: d.represent_sequence("tag:yaml.org,2002:python/tuple", list(v)))


def _hms(seconds: float) -> str:
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h):02d}:{int(m):02d}:{s:06.3f}"


def _participants(rng: np.random.Generator, n: int, first: int = 1
                  ) -> dict[str, dict[str, Any]]:
    meta: dict[str, dict[str, Any]] = {}
    for i in range(n):
        lo, hi = _AGE_RANGES[int(rng.integers(len(_AGE_RANGES)))]
        eth, eth_s = _ETHNICITY[int(rng.integers(len(_ETHNICITY)))]
        meta[f"P{first + i:03d}"] = {
            "Age": int(rng.integers(lo, hi + 1)), "Age range": f"{lo}-{hi}",
            "Birth country": _COUNTRIES[int(rng.integers(len(_COUNTRIES)))],
            "Canada province": _PROVINCES[int(rng.integers(len(_PROVINCES)))],
            "Ethnicity": eth, "Ethnicity simplified": eth_s,
            "Gender": _GENDERS[int(rng.integers(len(_GENDERS)))],
            "Is student": "Yes" if rng.random() < 0.3 else "No",
            "Use in challenges": "Yes" if rng.random() < 0.85 else "No",
            "Use in publications": "Yes" if rng.random() < 0.9 else "No",
        }
    if n >= 3 and all(m["Use in challenges"] == m["Use in publications"] == "Yes"
                      for m in meta.values()):
        meta[f"P{first + n - 1:03d}"]["Use in challenges"] = "No"  # always show a decline
    return meta


def _splits(rng: np.random.Generator, pids: list[str]) -> dict[str, str]:
    order = [pids[i] for i in rng.permutation(len(pids))]
    n = len(order)
    n_test = max(1, round(0.25 * n)) if n >= 3 else 0
    n_val = max(1, round(0.10 * n)) if n >= 3 else 0
    return {pid: ("test" if i < n_test else "val" if i < n_test + n_val else "train")
            for i, pid in enumerate(order)}


def plan_dataset(cfg: SampleConfig) -> tuple[dict[str, dict[str, Any]], dict[str, str],
                                             list[VideoJob]]:
    """Draw participants, splits and every video plan from ``cfg.seed``."""
    rng = np.random.default_rng(cfg.seed)
    meta = _participants(rng, cfg.participants, cfg.first_participant)
    splits = _splits(rng, list(meta))
    jobs: list[VideoJob] = []
    for pid in meta:
        app = Appearance(tuple(float(x) for x in rng.uniform(0.88, 1.12, 3)),  # type: ignore[arg-type]
                         tuple(int(x) for x in rng.integers(150, 230, 3)),  # type: ignore[arg-type]
                         tuple(int(x) for x in rng.integers(40, 140, 3)))  # type: ignore[arg-type]
        n_q = int(rng.integers(max(1, cfg.max_questions - 2), cfg.max_questions + 1))
        questions = sorted(rng.choice(7, size=n_q, replace=False).tolist())
        pitch, voice = int(rng.integers(30, 70)), ("en-us", "en-gb")[int(rng.integers(2))]
        day = int(rng.integers(1, 28))
        for q in questions:
            ah = bool(rng.random() < cfg.ah_rate)
            plan = plan_video(rng, q + 1, ah=ah, fps=cfg.fps, max_seconds=cfg.max_seconds,
                              voice=voice, pitch=pitch)
            stamp = f"2024-03-{day:02d} 10-{2 * q:02d}-{int(rng.integers(60)):02d}"
            rel = f"{pid}/Visite_1/{pid}_Question_{q + 1}_{stamp}_Video.mp4"
            jobs.append(VideoJob(rel, plan, app, int(rng.integers(2**31))))
    return meta, splits, jobs


def _annotation(job: VideoJob, annotator: str) -> dict[str, Any]:
    plan = job.plan
    stem = str(PurePosixPath(job.rel).with_suffix(""))
    labels = np.zeros(plan.n_frames, dtype=np.int8)
    fr, tm, cues, cert = [], [], [], []
    for seg in plan.segments:
        s, e = plan.frame_of(seg.start_s), plan.frame_of(seg.end_s)
        labels[s:e + 1] = 1
        fr.append([s + 1, e + 1])  # frame images are numbered from 1
        tm.append([_hms(seg.start_s), _hms(seg.end_s)])
        cues.append({k: list(v) for k, v in seg.cues.items()})
        cert.append(seg.certainty)
    return {
        "global_ah": int(bool(plan.segments)), "annotator_id": annotator,
        "certainty_ah": cert, "fr_detailed_ah": fr, "time_detailed_ah": tm, "all_cues": cues,
        "frame_annotation": [[f"{cb.FACES_DIR}/{stem}/frame-{i + 1}.jpg", int(v)]
                             for i, v in enumerate(labels)],
        "transcript": " ".join(u.text for u in plan.utterances),
    }


def _transcription(job: VideoJob) -> str:
    chunks = [{"language": "en", "text": f" {u.text}", "timestamp": (u.start_s, u.end_s)}
              for u in job.plan.utterances]
    doc = {"text": " " + " ".join(u.text for u in job.plan.utterances), "chunks": chunks}
    return yaml.dump(doc, Dumper=_TupleDumper, sort_keys=False, width=1000)


def write_annotations(root: Path, cfg: SampleConfig) -> list[VideoJob]:
    """Write every annotation file of the dataset (deterministic bytes); return the jobs."""
    meta, splits, jobs = plan_dataset(cfg)
    root.mkdir(parents=True, exist_ok=True)
    (root / cb.META_YML).write_text(dump_yaml(meta), encoding="utf-8")
    anns = {job.rel: _annotation(job, f"A{(i % 3) + 1}") for i, job in enumerate(jobs)}
    (root / cb.ANNOTATIONS_YAML).write_text(dump_yaml(anns), encoding="utf-8")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for rel, ann in anns.items():
        writer.writerow([rel, ann["global_ah"]])
    (root / cb.VIDEO_LABELS_CSV).write_text(buf.getvalue(), encoding="utf-8")
    for d in (cb.SPLIT_DIR, cb.SPLIT_FRAMES_DIR):
        (root / d).mkdir(exist_ok=True)
    for split in ("train", "val", "test"):
        lines: list[str] = []
        frame_lines: list[str] = []
        for rel, ann in anns.items():
            if splits[rel.split("/")[0]] != split:
                continue
            lines.append(f"{rel},{ann['global_ah']},{ann['transcript']}")
            frame_lines.extend(f"{fid},{lab}" for fid, lab in ann["frame_annotation"])
        (root / cb.SPLIT_DIR / f"{split}.txt").write_text("\n".join(lines) + "\n", "utf-8")
        (root / cb.SPLIT_FRAMES_DIR / f"{split}.txt").write_text(
            "\n".join(frame_lines) + "\n", "utf-8")
    for job in jobs:
        folder = root / cb.TRANSCRIPTION_DIR / str(PurePosixPath(job.rel).with_suffix(""))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{PurePosixPath(job.rel).stem}.yml").write_text(_transcription(job),
                                                                   encoding="utf-8")
    return jobs


def _render(args: tuple[str, VideoJob]) -> tuple[str, list[bool]]:
    root, job = args
    out = Path(root) / cb.VIDEOS_DIR / job.rel
    has_face = write_video(out, job.plan, job.appearance, np.random.default_rng(job.seed))
    return job.rel, has_face.tolist()


def _runs(mask: list[bool]) -> list[list[int]]:
    """[start, end) frame runs where ``mask`` is true."""
    runs: list[list[int]] = []
    for i, v in enumerate(mask):
        if v and (not runs or runs[-1][1] != i):
            runs.append([i, i + 1])
        elif v:
            runs[-1][1] = i + 1
    return runs


def generate(root: Path, cfg: SampleConfig) -> dict[str, Any]:
    """Write a whole sample dataset to ``root``; return a summary."""
    root = Path(root)
    if root.exists() and any(root.iterdir()) and not (root / cb.META_YML).exists():
        raise SampleDataError("output directory exists and is not a sample dataset",
                              path=root, expected="an empty or new directory")
    jobs = write_annotations(root, cfg)
    with ProcessPoolExecutor(max_workers=min(cfg.workers, len(jobs))) as pool:
        faces = dict(pool.map(_render, [(str(root), j) for j in jobs]))
    truth = {job.rel: {
        "fps": job.plan.fps, "n_frames": job.plan.n_frames, "duration_s": job.plan.duration_s,
        "face_runs": _runs(faces[job.rel]),
        "utterances": [{"text": u.text, "start_s": u.start_s, "end_s": u.end_s,
                        "hesitant": u.hesitant} for u in job.plan.utterances],
        "face_events": [{"kind": e.kind, "start_s": e.start_s, "end_s": e.end_s}
                        for e in job.plan.face_events],
    } for job in jobs}
    (root / TRUTH_FILE).write_text(json.dumps(truth, indent=1), encoding="utf-8")
    n_ah = sum(1 for j in jobs if j.plan.segments)
    return {"root": str(root), "participants": cfg.participants, "videos": len(jobs),
            "ah_videos": n_ah, "frames": sum(j.plan.n_frames for j in jobs),
            "seconds": round(sum(j.plan.duration_s for j in jobs), 2)}
