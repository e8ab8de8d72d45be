"""A plan into the store: two feature sets of one extractor side by side, read back by
name; the words transcribed land in the asr_words table and leave with a purge."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from extractors.plan import read_plan
from flows.engine import extract_release
from store.ingest import ingest
from store.layout import read_attrs, video_dir
from store.purge import purge_participant
from store.reader import FeatureReader
from store.tables import read_table, table_path
from store.verify import verify_store
from training.data import resolve_sources


@pytest.mark.slow
def test_a_plan_lands_named_sets_and_the_asr_words_table(sample_release: Path,
                                                         tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest(sample_release, store)
    videos = read_table(store, "videos")
    keep = videos["participant_id"][0]
    for pid in set(videos["participant_id"].to_list()) - {keep}:  # keep extraction short
        purge_participant(store, pid)
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text("logmel: {}\nlogmel_fine:\n  extractor: logmel\n  n_mels: 96\n"
                         "words: {}\n")
    report = extract_release(store, read_plan(plan_file))
    n_videos = videos.filter(pl.col("participant_id") == keep).height
    assert len(report.extracted) == n_videos and not report.quarantined
    reader = FeatureReader(store)
    fine, plain = reader.resolve("logmel_fine"), reader.resolve("logmel")
    assert fine.startswith("logmel_fine-") and plain.startswith("logmel-")
    sources = {s.modality: s for s in resolve_sources(store, ["logmel", "logmel_fine"])}
    assert (sources["logmel"].dim, sources["logmel_fine"].dim) == (64, 96)
    fsets = read_table(store, "featuresets")
    assert sorted(fsets["extractor"].to_list()) == ["logmel", "logmel", "words"]

    words = pl.scan_parquet(table_path(store, "asr_words")).collect()
    assert words.height > 0 and set(words["participant_id"]) == {keep}
    words_fs = reader.resolve("words")
    for vid, rows in words.group_by("video_id"):
        index = reader.video(words_fs, str(vid[0]), ["word_index"])["word_index"]
        for r in rows.filter(pl.col("first_frame").is_not_null()).iter_rows(named=True):
            frames = np.flatnonzero(index == r["word_index"])
            assert (r["first_frame"], r["last_frame"]) == (frames[0], frames[-1])
        attrs = read_attrs(video_dir(store, words_fs, keep, str(vid[0])))
        assert rows.height == len(json.loads(attrs["transcript"])["words"])
    # beside the release's own transcripts: the same videos
    release = read_table(store, "transcripts").filter(pl.col("participant_id") == keep)
    assert set(words["video_id"]) <= set(release["video_id"])
    assert [p for p in verify_store(store) if p.severity == "error"] == []

    purge_participant(store, keep)
    assert read_table(store, "asr_words").height == 0
