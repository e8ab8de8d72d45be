"""Generate a sample dataset in the BAH release layout (any variant in circulation).

Participants have numeric ids (82553, 82554, ...); file names carry a space between
date and time, and where there are enough videos one carries a device suffix
(``..._Video-DESKTOP-NQ55E0P.mp4``), one an underscore between date and time and
one is spelled with spaces instead of underscores, as in the real release.
Annotations (YAML, CSV, split files) depend only on the seed and options: the
same seed gives the same bytes, and every variant
(:mod:`bahfs.sample.release_files`) of one seed describes the same videos. Videos
are rendered in parallel worker processes; each video file is written atomically.
A ground-truth sidecar ``bahfs_truth.json`` at the root records what the generator
drew (face visible per frame, utterance times), for tests of the extractors;
readers of the release ignore it.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from bahfs.sample.jobs import VideoJob
from bahfs.sample.release_files import Variant, video_path, write_release_files
from bahfs.sample.render import Appearance, write_video
from bahfs.sample.script import MIN_SECONDS, plan_video
from store.errors import SampleDataError
from store.release import codebook as cb

TRUTH_FILE = "bahfs_truth.json"

_PROVINCES = ("Quebec (QC)", "Ontario (ON)", "British Columbia (BC)", "Alberta (AB)",
              "Manitoba (MB)", "Saskatchewan (SK)", "Nova Scotia (NS)", "New Brunswick (NB)",
              "Newfoundland and Labrador (NL)")
FIRST_ID = 82553  # participant ids of the generator: FIRST_ID, FIRST_ID + 1, ...
DEVICE_SUFFIX = "-DESKTOP-NQ55E0P"
_COUNTRIES = ("Canada", "France", "India", "China", "Morocco", "Brazil", "Philippines")
_ETHNICITY = (("White", "White"), ("South Asian", "Asian"), ("Chinese", "Asian"),
              ("Black", "Black"), ("Arab", "Other"), ("Latin American", "Other"))
_GENDERS = ("Female", "Male", "Non-binary")
_AGE_RANGES = ((18, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, 80))


class SampleConfig(BaseModel):
    """Options of the sample generator (validated at the boundary)."""

    model_config = ConfigDict(frozen=True)

    participants: int = Field(ge=1, le=1000)
    first_participant: int = Field(default=1, ge=1, le=9000)  # the first id's number (batches)
    seed: int = 0
    max_questions: int = Field(default=7, ge=1, le=7)
    max_seconds: float = Field(default=30.0, ge=MIN_SECONDS, le=120.0)
    fps: float = Field(default=24.0, gt=0, le=120)
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    ah_rate: float = Field(default=0.55, ge=0.0, le=1.0)
    variant: Variant = "release"


def participant_id(number: int) -> str:
    """The numeric id of the generator's participant ``number`` (1 -> '82553')."""
    return str(FIRST_ID + number - 1)


def _participants(rng: np.random.Generator, n: int, first: int = 1
                  ) -> dict[str, dict[str, Any]]:
    meta: dict[str, dict[str, Any]] = {}
    for i in range(n):
        lo, hi = _AGE_RANGES[int(rng.integers(len(_AGE_RANGES)))]
        eth, eth_s = _ETHNICITY[int(rng.integers(len(_ETHNICITY)))]
        meta[participant_id(first + i)] = {
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
        meta[participant_id(first + n - 1)]["Use in challenges"] = "No"  # always a decline
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
            name = f"{pid}_Question_{q + 1}_{stamp}_Video.mp4"
            jobs.append(VideoJob(pid, name, plan, app, int(rng.integers(2**31))))
    return meta, splits, _irregular_names(jobs)


def _irregular_names(jobs: list[VideoJob]) -> list[VideoJob]:
    """As in the real release: the second video carries a device suffix; with four or
    more videos the third has an underscore between date and time; with more than two,
    the last is spelled with spaces instead of underscores."""
    out = list(jobs)
    if len(out) >= 2:
        j = out[1]
        out[1] = replace(j, name=j.name.replace("_Video.mp4", f"_Video{DEVICE_SUFFIX}.mp4"))
    if len(out) >= 4:
        j = out[2]
        out[2] = replace(j, name=j.name.replace(" ", "_"))
    if len(out) >= 3:
        j = out[-1]
        out[-1] = replace(j, name=j.name.replace("_", " "))
    return out


def write_annotations(root: Path, cfg: SampleConfig) -> list[VideoJob]:
    """Write every annotation file of the dataset (deterministic bytes); return the jobs."""
    meta, splits, jobs = plan_dataset(cfg)
    write_release_files(root, meta, splits, jobs, cfg.variant)
    return jobs


def _render(args: tuple[str, str, VideoJob]) -> tuple[str, list[bool]]:
    root, rel, job = args
    has_face = write_video(Path(root) / rel, job.plan, job.appearance,
                           np.random.default_rng(job.seed))
    return rel, has_face.tolist()


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
    rels = [video_path(j, cfg.variant) for j in jobs]
    with ProcessPoolExecutor(max_workers=min(cfg.workers, len(jobs))) as pool:
        faces = dict(pool.map(_render, [(str(root), r, j) for r, j in zip(rels, jobs,
                                                                          strict=True)]))
    truth = {rel: {
        "fps": job.plan.fps, "n_frames": job.plan.n_frames, "duration_s": job.plan.duration_s,
        "face_runs": _runs(faces[rel]),
        "utterances": [{"text": u.text, "start_s": u.start_s, "end_s": u.end_s,
                        "hesitant": u.hesitant} for u in job.plan.utterances],
        "face_events": [{"kind": e.kind, "start_s": e.start_s, "end_s": e.end_s}
                        for e in job.plan.face_events],
    } for rel, job in zip(rels, jobs, strict=True)}
    (root / TRUTH_FILE).write_text(json.dumps(truth, indent=1), encoding="utf-8")
    n_ah = sum(1 for j in jobs if j.plan.segments)
    return {"root": str(root), "participants": cfg.participants, "videos": len(jobs),
            "ah_videos": n_ah, "frames": sum(j.plan.n_frames for j in jobs),
            "seconds": round(sum(j.plan.duration_s for j in jobs), 2)}
