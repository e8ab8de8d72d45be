"""Inbox batches: which are ready, which are new, and how they merge into the tables."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from bahfs.sample.generate import SampleConfig
from flows.batches import Batch, find_batches, ingest_batch, pending_batches
from flows.engine import extract_release
from store.consent import subject_hash, withdrawn
from store.errors import DatasetLayoutError
from store.layout import features_root
from store.release import codebook as cb
from store.schema import INGEST_TABLES
from store.tables import read_table

pytestmark = pytest.mark.slow  # renders two small batches of real videos


BATCH_1 = SampleConfig(participants=3, seed=3, max_questions=1, max_seconds=14.0, workers=2)
BATCH_2 = SampleConfig(participants=2, first_participant=4, seed=5, max_questions=1,
                       max_seconds=14.0, workers=2)


@pytest.fixture(scope="module")
def inbox_src(generated: Callable[[SampleConfig], Path],
              tmp_path_factory: pytest.TempPathFactory) -> Path:
    """batch-001: 82553-82555 (82555 declines), batch-002: 82556-82557 (their videos
    linked from the run's shared releases: never written here)."""
    root = tmp_path_factory.mktemp("inbox")
    for name, cfg in (("batch-001", BATCH_1), ("batch-002", BATCH_2)):
        (root / name).symlink_to(generated(cfg), target_is_directory=True)
    return root


@pytest.fixture
def inbox(inbox_src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "inbox"
    shutil.copytree(inbox_src, dst)
    return dst


def _pids(store: Path, table: str) -> set[str]:
    return set(read_table(store, table)["participant_id"].to_list())


def test_batches_merge_and_only_new_ones_are_pending(inbox: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    found = find_batches(inbox)
    assert [b.name for b in found] == ["batch-001", "batch-002"]
    ingest_batch(found[0], store)
    assert [b.name for b in pending_batches(store, found)] == ["batch-002"]
    report = ingest_batch(found[1], store)
    assert report.videos == 2 and not report.excluded
    assert pending_batches(store, find_batches(inbox)) == []
    assert _pids(store, "participants") == {"82553", "82554", "82556", "82557"}
    assert _pids(store, "exclusions") == {"82555"}
    for table in ("videos", "segments", "frame_labels", "splits"):
        assert "82555" not in _pids(store, table)
    sources = set(read_table(store, "videos")["source"].to_list())
    assert sources == {str((inbox / "batch-001").resolve()), str((inbox / "batch-002").resolve())}
    assert read_table(store, "batches")["batch"].to_list() == ["batch-001", "batch-002"]


def test_a_redelivered_batch_replaces_itself(inbox: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    for b in find_batches(inbox):
        ingest_batch(b, store)
    before = {t: read_table(store, t).height for t in INGEST_TABLES}
    ann = inbox / "batch-001" / cb.ANNOTATIONS_YAML
    ann.write_text(ann.read_text(encoding="utf-8") + "\n", encoding="utf-8")  # re-delivery
    again = pending_batches(store, find_batches(inbox))
    assert [b.name for b in again] == ["batch-001"]
    ingest_batch(again[0], store)
    assert {t: read_table(store, t).height for t in INGEST_TABLES} == before  # no duplicates
    assert read_table(store, "batches").height == 2


def test_a_batch_still_being_copied_waits(inbox: Path) -> None:
    old = time.time() - 3600
    for p in (inbox / "batch-002").rglob("*"):
        os.utime(p, (old, old))
    (inbox / "batch-001" / cb.META_YML).touch()  # batch-001 changed just now
    assert [b.name for b in find_batches(inbox, settle_s=60)] == ["batch-002"]
    assert len(find_batches(inbox, settle_s=0)) == 2


def test_a_release_folder_is_its_own_single_batch(inbox: Path) -> None:
    assert [b.name for b in find_batches(inbox / "batch-002")] == ["batch-002"]


def test_missing_inbox_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError, match="inbox folder not found") as exc:
        find_batches(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(exc.value)


def test_consent_removed_by_a_later_delivery_purges_everywhere(inbox: Path,
                                                               tmp_path: Path) -> None:
    store = tmp_path / "store"
    for b in find_batches(inbox):
        ingest_batch(b, store)
    extract_release(store, ("logmel",))
    assert any(features_root(store).glob("*/82553/*/zarr.json"))
    meta = inbox / "batch-001" / cb.META_YML
    text = meta.read_text(encoding="utf-8")
    head, tail = text.split("'82554':", 1)
    meta.write_text(head.replace("Use in publications: 'Yes'", "Use in publications: 'No'")
                    + "'82554':" + tail, encoding="utf-8")
    (redelivered,) = pending_batches(store, find_batches(inbox))
    report = ingest_batch(redelivered, store)
    assert "82553" in report.excluded
    assert not any(features_root(store).glob("*/82553/*"))
    for table in ("participants", "videos", "segments", "cues", "frame_labels", "splits",
                  "extracted"):
        assert "82553" not in _pids(store, table)
    assert subject_hash("82553") in withdrawn(store)
    assert _pids(store, "participants") == {"82554", "82556", "82557"}
    # a later re-ingest of the same folder cannot bring 82553 back
    meta.write_text(text, encoding="utf-8")
    (again,) = pending_batches(store, find_batches(inbox))
    ingest_batch(again, store)
    assert "82553" not in _pids(store, "participants")
    assert read_table(store, "exclusions").filter(pl.col("participant_id") == "82553").height


def test_a_bad_batch_is_reported_and_skipped_the_others_land(inbox: Path,
                                                             tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bahfs.cli import app

    store = tmp_path / "store"
    ann = inbox / "batch-002" / cb.ANNOTATIONS_YAML
    good = ann.read_text(encoding="utf-8")
    ann.write_text(good.replace("global_ah:", "global_ah: [", 1), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(inbox), str(store), "--merge"])
    assert result.exit_code == 1
    assert "batch batch-002 not ingested" in result.output and str(ann) in result.output
    assert "line" in result.output  # malformed YAML: where it broke
    assert _pids(store, "participants") == {"82553", "82554"}  # batch-001 landed
    ann.write_text(good, encoding="utf-8")  # fixed and re-delivered: it lands
    again = runner.invoke(app, ["ingest", str(inbox), str(store), "--merge"])
    assert again.exit_code == 0, again.output
    assert _pids(store, "participants") == {"82553", "82554", "82556", "82557"}


def _ingest_in_child(batch: Batch, store: str) -> None:
    ingest_batch(batch, Path(store))


def test_two_ingests_of_different_batches_at_once(inbox: Path, tmp_path: Path) -> None:
    import multiprocessing as mp

    store = tmp_path / "store"
    batches = find_batches(inbox)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_ingest_in_child, args=(b, str(store))) for b in batches]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    assert _pids(store, "participants") == {"82553", "82554", "82556", "82557"}
    videos = read_table(store, "videos")
    assert videos["video_id"].is_unique().all() and videos.height == 4  # one per person
    assert sorted(read_table(store, "batches")["batch"]) == ["batch-001", "batch-002"]
    for table in INGEST_TABLES:  # the declined participant is named in exclusions alone
        assert ("82555" in _pids(store, table)) == (table == "exclusions"), table


def _extract_in_child(store: str) -> None:
    extract_release(Path(store), ("logmel",))


def test_an_ingest_while_an_extract_runs(inbox: Path, tmp_path: Path) -> None:
    import multiprocessing as mp

    store = tmp_path / "store"
    first, second = find_batches(inbox)
    ingest_batch(first, store)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_extract_in_child, args=(str(store),)),
             ctx.Process(target=_ingest_in_child, args=(second, str(store)))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    extract_release(store, ("logmel",))  # the next run takes what arrived meanwhile
    videos = read_table(store, "videos")
    extracted = read_table(store, "extracted")
    assert sorted(extracted["video_id"]) == sorted(videos["video_id"])  # all, once each
    assert _pids(store, "participants") == {"82553", "82554", "82556", "82557"}
    assert read_table(store, "extract_runs").height == 2
