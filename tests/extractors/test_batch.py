"""Extracting a whole ingested release into the store: skip what is done, quarantine
what fails, land the rest."""

from __future__ import annotations

import shutil
from pathlib import Path

from bahfs.release import codebook as cb
from extractors.audio import LogMelExtractor
from extractors.batch import extract_release
from store.ingest import ingest
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
    shutil.copy(media["fps30"][0], videos_dir / broken_rel)  # another video, other length
    report = extract_release(mutable_release, store, [LogMelExtractor()])
    assert list(report.quarantined) == [broken_id]
    assert "frames" in report.quarantined[broken_id]
    from store.reader import FeatureReader
    assert broken_id not in FeatureReader(store).extracted(LogMelExtractor().spec().id)
    assert len(report.extracted) == table.height - 1
    q = read_table(store, "quarantine")
    assert q.filter(q["stage"] == "extract")["video_id"].to_list() == [broken_id]
    again = extract_release(mutable_release, store, [LogMelExtractor()])
    assert sorted(again.skipped) == sorted(report.extracted) and not again.extracted
    assert read_table(store, "quarantine").height == 1  # no duplicate rows
    assert read_table(store, "extracted").height == table.height - 1
    assert [p for p in verify_store(store) if p.severity == "error"] == []
