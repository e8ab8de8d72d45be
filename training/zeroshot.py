"""The zero-shot (multimodal) LLM protocol: prompts out as JSONL, answers back in, scored.

bahfs runs no language model: it writes, per video, the protocol's five prompt
variants with the frames to show (8 uniformly spaced frames per video at video
level; consecutive 8-frame windows at frame level), as JSONL any model server can
be fed, and scores the answers that come back with the official metrics.

The five variants follow the paper's protocol (a plain question; with each of
two definitions of ambivalence/hesitancy; each definition with the transcript).
The wording here is bahfs's own; to reproduce the paper's exact prompts, pass
them as a YAML file (variant -> text, ``{transcript}`` where the transcript goes).

Answers are read tolerantly: "Non-Ambivalent" (also "non ambivalent", "not",
"isn't", "not at all ambivalent", any dash) is 0, "Ambivalent" is 1, case and
punctuation aside; an answer with neither, with both ("Ambivalent or
Non-Ambivalent"), or saying it cannot tell is unparseable: counted, reported,
and left out of the metrics.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from store.backend import VideoRef
from store.errors import ConfigError, NotFoundError
from store.local import as_store
from store.reader import FeatureReader
from store.release.yamlio import load_yaml
from training.metrics import bah_metrics, video_logits

FRAMES_PER_VIDEO: Final = 8
WINDOW: Final = 8
_ASK = ("Answer with one word: 'Ambivalent' or 'Non-Ambivalent'.")
_DEF1 = ("Ambivalence is holding positive and negative feelings about the same thing at once; "
         "hesitancy is a delay or reluctance before acting or answering.")
_DEF2 = ("Ambivalence/hesitancy shows as conflicting or inconsistent signals across the face, "
         "the voice, the words and the body: hedging, fillers, pauses, looking away, a "
         "smile that does not match what is said.")
PROMPTS: Final[dict[str, str]] = {
    "simple": f"Is the person in this video ambivalent or hesitant? {_ASK}",
    "definition1": f"{_DEF1} Is the person in this video ambivalent or hesitant? {_ASK}",
    "definition2": f"{_DEF2} Is the person in this video ambivalent or hesitant? {_ASK}",
    "transcript_definition1": (f"{_DEF1} The person says: \"{{transcript}}\" Is the person "
                               f"in this video ambivalent or hesitant? {_ASK}"),
    "transcript_definition2": (f"{_DEF2} The person says: \"{{transcript}}\" Is the person "
                               f"in this video ambivalent or hesitant? {_ASK}"),
}
_NEG = re.compile(r"\b(?:non|not|isn't|is not|not at all|never)[\s\-_]*ambivalent\b")
_POS = re.compile(r"\bambivalent\b")
_UNSURE = re.compile(r"\b(?:cannot|can't|can not|unable to) (?:tell|say|determine)\b"
                     r"|\b(?:unclear|not sure|unsure|uncertain)\b")
_DASHES = str.maketrans({c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2212"})


def parse_answer(text: object) -> int | None:
    """1 for 'Ambivalent', 0 for 'Non-Ambivalent' (or 'not', 'isn't ambivalent'), None
    when the answer says neither, says both, or says it cannot tell."""
    t = str(text).lower().translate(_DASHES) if text is not None else ""
    if _UNSURE.search(t):
        return None
    negative = bool(_NEG.search(t))
    positive = bool(_POS.search(_NEG.sub(" ", t)))
    if negative == positive:  # neither label, or both ("Ambivalent or Non-Ambivalent")
        return None
    return 0 if negative else 1


def load_prompts(path: Path | None) -> dict[str, str]:
    """The five variants: bahfs's wording, or the user's YAML (variant -> template)."""
    if path is None:
        return dict(PROMPTS)
    data = load_yaml(path)
    if not isinstance(data, dict) or not data or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ConfigError("not a mapping of prompt variants", path=path,
                          expected="variant name -> prompt text ({transcript} optional)")
    return data


def video_frames(n_frames: int, k: int = FRAMES_PER_VIDEO) -> list[int]:
    """``k`` uniformly spaced frame indices over a video (fewer if it is shorter)."""
    return sorted({round(float(x)) for x in np.linspace(0, n_frames - 1, min(k, n_frames))})


def transcripts(store: Path, source: str, videos: pl.DataFrame) -> dict[str, str]:
    """Each video's transcript: the release's (``release``) or bahfs's own ASR
    (``asr``: the ``words`` feature set's transcript)."""
    if source == "release":
        return {v: t or "" for v, t in videos.select("video_id", "transcript").iter_rows()}
    if source != "asr":
        raise ConfigError(f"transcript source {source!r}", expected="release or asr")
    reader = FeatureReader(store)
    fs = reader.resolve("words")
    out = {}
    for vid, pid in videos.select("video_id", "participant_id").iter_rows():
        try:
            attrs = reader.store.video_attrs(VideoRef(fs, pid, vid))
        except NotFoundError as exc:
            raise NotFoundError(f"video {vid!r} has no ASR transcript", video=vid,
                                expected="`bahfs extract` with the words extractor") from exc
        out[vid] = json.loads(attrs.get("transcript", "{}")).get("text", "").strip()
    return out


def prompt_records(store: Path, *, split: str = "test", level: str = "video",
                   transcript: str = "release", prompts: dict[str, str] | None = None
                   ) -> Iterator[dict[str, Any]]:
    """One record per (video or window, variant): id, video, frames, prompt."""
    if level not in ("video", "frame"):
        raise ConfigError(f"level {level!r}", expected="video or frame")
    prompts = prompts or dict(PROMPTS)
    videos = as_store(store).read_table("videos").filter(
        pl.col("split") == split).sort("release_id")
    if videos.height == 0:
        raise ConfigError(f"no videos in split {split!r}", expected="train, val or test")
    text = transcripts(store, transcript, videos) if any(
        "{transcript}" in p for p in prompts.values()) else {}
    for row in videos.iter_rows(named=True):
        vid, n = row["video_id"], row["n_frames"]
        spans = ([(0, n, video_frames(n))] if level == "video" else
                 [(s, min(s + WINDOW, n), list(range(s, min(s + WINDOW, n))))
                  for s in range(0, n, WINDOW)])
        for start, stop, frames in spans:
            for variant, template in prompts.items():
                rid = f"{vid}#{variant}" + (f"#{start}" if level == "frame" else "")
                yield {"id": rid, "video_id": vid, "release_id": row["release_id"],
                       "video": str(Path(row["source"]) / row["path"]), "level": level,
                       "variant": variant, "start": start, "stop": stop, "frames": frames,
                       "fps": row["fps"],
                       "prompt": template.replace("{transcript}", text.get(vid, ""))}


def export_prompts(store: Path, out: Path, **options: Any) -> int:
    """Write :func:`prompt_records` as JSONL; return how many records."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with Path(out).open("w", encoding="utf-8") as fh:
        for rec in prompt_records(store, **options):
            fh.write(json.dumps(rec) + "\n")
            n += 1
    return n


def score(store: Path, prompts_jsonl: Path, answers_jsonl: Path) -> dict[str, Any]:
    """Official metrics per variant from the answers (``{"id", "answer"}`` per line)."""
    records = {r["id"]: r for r in _jsonl(prompts_jsonl)}
    answers = {a["id"]: a.get("answer") for a in _jsonl(answers_jsonl)}
    reader = FeatureReader(store)
    labels = dict(reader.store.read_table("videos").select(
        "video_id", "global_label").iter_rows())
    out: dict[str, Any] = {}
    for variant in sorted({r["variant"] for r in records.values()}):
        mine = [r for r in records.values() if r["variant"] == variant]
        got = {r["id"]: parse_answer(answers[r["id"]]) for r in mine if r["id"] in answers}
        usable = [r for r in mine if got.get(r["id"]) is not None
                  and labels.get(r["video_id"]) is not None]
        entry: dict[str, Any] = {"prompts": len(mine), "answered": len(got),
                                 "unparseable": sum(v is None for v in got.values()),
                                 "scored": len(usable)}
        if usable and mine[0]["level"] == "video":
            gt = np.array([labels[r["video_id"]] for r in usable])
            p = np.array([float(got[r["id"]] or 0) for r in usable])
            entry["video"] = bah_metrics(gt, video_logits(p))
        elif usable:
            gt = np.concatenate([reader.labels(r["video_id"])[r["start"]:r["stop"]]
                                 for r in usable])
            p = np.concatenate([np.full(r["stop"] - r["start"], float(got[r["id"]] or 0))
                                for r in usable])
            entry["frame"] = bah_metrics(gt, video_logits(p))
        out[variant] = entry
    return out


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"line {i} is not JSON: {exc.msg}", path=path,
                              expected='{"id": ..., ...} per line') from exc
        if not isinstance(rec, dict) or "id" not in rec:
            raise ConfigError(f"line {i} has no id", path=path, expected='{"id": ..., ...}')
        rows.append(rec)
    return rows
