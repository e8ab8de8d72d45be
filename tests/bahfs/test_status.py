"""``bahfs status``: what a store holds and what is left to do, read only."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from bahfs.cli import app
from store.purge import unpublish_video
from store.schema import empty
from store.tables import read_table, write_table

runner = CliRunner()


def _progress(store: Path) -> str:
    """Three videos of the face feature set taken back out: one quarantined, one hit by
    a bug, one plainly pending; one extract run recorded. The feature set's id."""
    ext = read_table(store, "extracted")
    fs = ext["feature_set"][0]
    out = ext.sort("video_id").head(3)
    for vid, pid in out.select("video_id", "participant_id").iter_rows():
        unpublish_video(store, pid, vid, [fs])
    (qv, qp), (bv, bp) = out.select("video_id", "participant_id").rows()[:2]
    write_table(store, "quarantine", pl.DataFrame([{
        "video_id": qv, "participant_id": qp, "path": "x.mp4", "stage": "extract",
        "reason": "undecodable", "kind": "decode", "quarantined_at": "2026-12-01T10:00:00+00:00"}],
        schema=empty("quarantine").schema))
    write_table(store, "bugs", pl.DataFrame([{
        "video_id": bv, "participant_id": bp, "run_id": "r1", "at": "2026-12-01T10:00:00",
        "error": "KeyError", "traceback": "..."}], schema=empty("bugs").schema))
    write_table(store, "extract_runs", pl.DataFrame([{
        "run_id": "r1", "started_at": "2026-12-01T09:00:00+00:00",
        "finished_at": "2026-12-01T09:02:30+00:00", "feature_sets": json.dumps([fs]),
        "batches": 1, "extracted": 3, "skipped": 0, "busy": 0, "quarantined": 1,
        "frames": 300, "detail": json.dumps({"bugs": {bv: "KeyError"}, "quarantined":
                                             {qv: "undecodable"}, "halted": ""})}],
        schema=empty("extract_runs").schema))
    return str(fs)


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")}


def test_status_on_a_small_store_and_as_json(small_store: Path, tmp_path: Path) -> None:
    fs = _progress(small_store)
    before = _snapshot(small_store)
    result = runner.invoke(app, ["status", str(small_store)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "participants: 3 consented, 0 excluded, 0 withdrawn" in out
    assert "videos: 6 consented, 0 excluded, 1 quarantined" in out
    assert f"{fs}: 3 / 1 / 1 / 1" in out  # extracted / pending / quarantined / bug
    assert "2026-12-01T09:00:00+00:00, 150 s, 3 videos on" in out
    assert "finished, 1 bugs, 1 quarantined" in out
    assert "access: group (files 0660, folders 2770), no drift" in out
    assert f"next: bahfs extract SOURCE {small_store}" in out
    assert len(out.splitlines()) <= 24  # one screen
    assert _snapshot(small_store) == before  # read only

    data = json.loads(runner.invoke(app, ["status", str(small_store), "--json"]).output)
    assert data["participants"] == {"consented": 3, "excluded": 0, "withdrawn": 0}
    assert data["feature_sets"] == [{"feature_set": fs, "extractor": "face", "extracted": 3,
                                     "pending": 1, "quarantined": 1, "bugs": 1}]
    assert data["runs"][0]["seconds"] == 150.0 and data["drifting_paths"] == 0
    assert data["size_bytes"] > 0 and data["next_step"] == f"bahfs extract SOURCE {small_store}"

    not_a_store = runner.invoke(app, ["status", str(tmp_path)])
    assert not_a_store.exit_code == 2 and "is not a bahfs store" in not_a_store.output


def test_status_says_what_to_do_next(small_store: Path, tmp_path: Path) -> None:
    from store.status import store_status

    assert store_status(small_store).next_step == f"bahfs train {small_store}"
    (small_store / "tables" / "videos.parquet").chmod(0o644)
    found = store_status(small_store)
    assert found.drifting_paths == 1 and found.next_step == f"bahfs verify {small_store} --fix"
    fresh = tmp_path / "fresh"
    assert runner.invoke(app, ["access", str(fresh), "--scope", "owner"]).exit_code == 0
    assert store_status(fresh).next_step.startswith("bahfs check-release DATASET")
