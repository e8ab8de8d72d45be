"""`bahfs demo`, the README's first command, end to end: a batch in the inbox, a real
Prefect server, `prefect deploy`, a worker, `prefect deployment run extract/extract`,
statistics, a TCN trained from the store, its metrics beside the all-negative
baseline, and the cue table of the face features."""

from __future__ import annotations

import json
import re
from typing import Any

import polars as pl
import pytest

from store.tables import read_table

# on the same xdist worker as the tests that train on its store (SAME_WORKER)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def test_demo_end_to_end(demo_run: Any) -> None:
    out = demo_run.output
    assert demo_run.exit_code == 0, out[-4000:]
    for step in range(1, 8):
        assert f"[{step}/7]" in out
    assert "sample batch already in" in out and "flow run completed" in out
    videos = read_table(demo_run.store, "videos")
    extracted = read_table(demo_run.store, "extracted")
    assert {f.rsplit("-", 1)[0] for f in extracted["feature_set"]} == {
        "face", "logmel", "audio", "words"}
    assert extracted.height == 4 * videos.height
    # the metrics, beside what predicting no A/H anywhere scores
    line = re.search(r"^test: AVGF1 frame ([\d.]+), video ([\d.]+); all-negative baseline "
                     r"\(nothing predicted A/H\): frame ([\d.]+), video ([\d.]+)$", out, re.M)
    assert line, out[-3000:]
    (run,) = (demo_run.out / "runs").iterdir()
    test = json.loads((run / "results.json").read_text())["splits"]["test"]
    assert float(line[1]) == round(test["frame"]["avg_f1"], 4)
    assert float(line[3]) == round(test["all_negative"]["frame"]["avg_f1"], 4)
    # the cue table: the generated faces turn away while hesitating, so the face is
    # lost in "Look away" segments more than elsewhere (has_face's AUC under 0.5)
    cues = pl.read_csv(demo_run.store / "plots" / "cue_auc.csv")
    look = cues.filter((pl.col("cue") == "Look away") & (pl.col("feature") == "has_face"))
    assert look.height == 1 and look["auc"][0] < 0.45, look
    assert "best 3 face features per cue" in out and "Look away" in out
    print(f"bahfs demo: {demo_run.seconds:.0f} s")
