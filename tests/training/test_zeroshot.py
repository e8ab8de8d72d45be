"""The zero-shot LLM protocol: prompts out, answers back, official metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bahfs.cli import app
from store.reader import FeatureReader
from store.tables import read_table
from training.zeroshot import PROMPTS, parse_answer, score, video_frames


@pytest.mark.parametrize(("text", "want"), [
    ("Ambivalent", 1), ("ambivalent.", 1), ("Answer: AMBIVALENT", 1),
    ("Non-Ambivalent", 0), ("non ambivalent", 0), ("NOT ambivalent.", 0),
    ("Non_Ambivalent", 0), ("The person is non-ambivalent", 0),
    ("maybe", None), ("", None), (None, None), ("ambivalence", None)])
def test_answers_are_read_tolerantly(text: str | None, want: int | None) -> None:
    assert parse_answer(text) == want


def test_eight_uniform_frames() -> None:
    assert video_frames(240) == [0, 34, 68, 102, 137, 171, 205, 239]
    assert video_frames(5) == [0, 1, 2, 3, 4]


def _answer(records: list[dict[str, object]], truth: dict[str, int], broken: set[str]
            ) -> list[dict[str, object]]:
    spell = {1: "Ambivalent.", 0: "non-ambivalent"}
    return [{"id": r["id"], "answer": "I cannot tell" if r["id"] in broken
             else spell[truth[str(r["id"])]]} for r in records]


def test_export_answer_score_round_trip(synth: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    prompts = tmp_path / "prompts.jsonl"
    result = runner.invoke(app, ["zeroshot", "export", str(synth), "--out", str(prompts)])
    assert result.exit_code == 0, result.output
    records = [json.loads(ln) for ln in prompts.read_text().splitlines()]
    test = read_table(synth, "videos").filter(read_table(synth, "videos")["split"] == "test")
    assert len(records) == test.height * len(PROMPTS)
    assert {r["variant"] for r in records} == set(PROMPTS)
    assert all(len(r["frames"]) == 8 and r["prompt"] for r in records)
    labels = dict(test.select("video_id", "global_label").iter_rows())
    truth = {r["id"]: labels[r["video_id"]] for r in records}
    broken = {records[0]["id"], records[1]["id"]}
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps(a) + "\n" for a in _answer(records, truth, broken)))
    result = runner.invoke(app, ["zeroshot", "score", str(synth), str(prompts), str(answers)])
    assert result.exit_code == 0, result.output
    scores = json.loads(answers.with_suffix(".scores.json").read_text())
    assert sum(s["unparseable"] for s in scores.values()) == 2
    for s in scores.values():
        assert s["scored"] == s["answered"] - s["unparseable"]
        assert s["video"]["avg_f1"] == pytest.approx(1.0)  # every readable answer right


def test_frame_level_windows(synth: Path, tmp_path: Path) -> None:
    from training.zeroshot import export_prompts, load_prompts

    prompts = tmp_path / "frames.jsonl"
    export_prompts(synth, prompts, level="frame", prompts={"simple": PROMPTS["simple"]})
    records = [json.loads(ln) for ln in prompts.read_text().splitlines()]
    videos = read_table(synth, "videos").filter(read_table(synth, "videos")["split"] == "test")
    assert len(records) == sum(-(-n // 8) for n in videos["n_frames"])
    reader = FeatureReader(synth)
    truth = {r["id"]: int(reader.labels(r["video_id"])[r["start"]:r["stop"]].mean() >= 0.5)
             for r in records}
    answers = tmp_path / "a.jsonl"
    answers.write_text("".join(json.dumps(a) + "\n" for a in _answer(records, truth, set())))
    frame = score(synth, prompts, answers)["simple"]["frame"]
    assert 0.5 < frame["avg_f1"] <= 1.0  # a window's majority label on all its frames
    assert load_prompts(None) == PROMPTS
    assert np.isfinite(frame["ap_pos"])
