"""Extracting a whole ingested release into the store: skip what is done, quarantine
what fails, land the rest."""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
from pathlib import Path

import pytest

from extractors.audio import LogMelExtractor
from flows.engine import extract_release
from flows.job import VideoJob, run_video
from store.ingest import ingest
from store.layout import features_root
from store.locks import video_lock
from store.purge import purge_participant
from store.release import codebook as cb
from store.tables import read_table
from store.verify import verify_store


def test_release_lands_skips_and_quarantines(sample_release: Path, mutable_release: Path,
                                             media: dict[str, tuple[Path, object]],
                                             tmp_path: Path) -> None:
    videos_dir = mutable_release / cb.VIDEOS_DIR
    videos_dir.unlink()
    shutil.copytree(sample_release / cb.VIDEOS_DIR, videos_dir)
    store = tmp_path / "store"
    ingest(mutable_release, store)
    table = read_table(store, "videos")
    broken_id, broken_rel = table.select("video_id", "path").row(0)
    shutil.copy(media["fps30"][0], mutable_release / broken_rel)  # another video, other length
    report = extract_release(store, ("logmel",))
    assert list(report.quarantined) == [broken_id]
    assert "frames" in report.quarantined[broken_id]
    from store.reader import FeatureReader
    assert broken_id not in FeatureReader(store).extracted(LogMelExtractor().spec().id)
    assert len(report.extracted) == table.height - 1
    q = read_table(store, "quarantine")
    assert q.filter(q["stage"] == "extract")["video_id"].to_list() == [broken_id]
    again = extract_release(store, ("logmel",))
    assert sorted(again.skipped) == sorted(report.extracted) and not again.extracted
    assert read_table(store, "quarantine").height == 1  # no duplicate rows
    assert read_table(store, "extracted").height == table.height - 1
    assert [p for p in verify_store(store) if p.severity == "error"] == []
    runs = read_table(store, "extract_runs")
    assert runs["extracted"].to_list() == [table.height - 1, 0]
    assert runs["quarantined"].to_list() == [1, 0]


def _job(store: Path) -> VideoJob:
    vid, pid, src, rel, n = read_table(store, "videos").select(
        "video_id", "participant_id", "source", "path", "n_frames").row(0)
    return VideoJob(vid, pid, src, rel, n)


def test_a_claimed_video_is_left_to_its_claimant(sample_release: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest(sample_release, store)
    job = _job(store)
    with video_lock(store, job.video_id) as mine:
        assert mine
        busy = run_video(store, job, ("logmel",))
    assert busy.status == "busy" and busy.frames == 0
    done = run_video(store, job, ("logmel",))
    assert done.status == "extracted" and done.frames == job.n_frames
    assert run_video(store, job, ("logmel",)).status == "skipped"
    assert done.model_loads == busy.model_loads  # built once in this process, reused


def _extract_in_child(store: str, out: str) -> None:
    report = extract_release(Path(store), ("logmel",))
    Path(out).write_text(json.dumps(report.as_dict()))


@pytest.mark.slow
def test_two_runs_at_once_never_extract_a_video_twice(sample_release: Path,
                                                      tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest(sample_release, store)
    ctx = mp.get_context("spawn")
    outs = [tmp_path / f"r{i}.json" for i in range(2)]
    procs = [ctx.Process(target=_extract_in_child, args=(str(store), str(o))) for o in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    a, b = (json.loads(o.read_text()) for o in outs)
    assert not set(a["extracted"]) & set(b["extracted"])  # nobody did a video twice
    everything = set(read_table(store, "videos")["video_id"].to_list())
    assert set(a["extracted"]) | set(b["extracted"]) == everything
    assert read_table(store, "extracted").height == len(everything)
    assert read_table(store, "extract_runs").height == 2


def test_withdrawal_during_extraction_stores_nothing(sample_release: Path,
                                                     tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest(sample_release, store)
    job = _job(store)
    purge_participant(store, job.participant_id)  # withdrawn after the job was planned
    out = run_video(store, job, ("logmel",))
    assert out.status == "quarantined" and "withdrew" in out.reason
    assert not (features_root(store)).exists() or not any(
        features_root(store).glob(f"*/{job.participant_id}/*/zarr.json"))


def test_a_withdrawal_racing_the_publish_takes_it_back(sample_release: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    """The worst moment: consent is checked, then the participant withdraws (the purge
    records it and removes their features) before this video is published."""
    import flows.job as job_module
    from store.verify import verify_store

    store = tmp_path / "store"
    ingest(sample_release, store)
    job = _job(store)
    real_write = job_module.FeatureWriter.write
    purged: list[bool] = []

    def write_after_a_purge(self: object, *args: object, **kwargs: object) -> object:
        if not purged:
            purge_participant(store, job.participant_id)
            purged.append(True)
        return real_write(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(job_module.FeatureWriter, "write", write_after_a_purge)
    out = run_video(store, job, ("logmel",))
    assert purged and out.status == "quarantined" and "withdrew" in out.reason
    assert not list(features_root(store).glob(f"*/{job.participant_id}"))
    assert [p for p in verify_store(store) if p.severity == "error"] == []
