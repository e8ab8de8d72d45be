"""Window datasets, samplers and the per-participant split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from torch.utils.data import DataLoader

from store.errors import ConfigError
from store.tables import read_table
from training.data import (
    NegativeUndersampler,
    ParticipantBalancedSampler,
    WindowDataset,
    collate,
    participant_split,
    resolve_sources,
    window_starts,
)


def test_window_starts_cover_without_crossing() -> None:
    assert window_starts(10, 4, 4) == [0, 4, 6]
    assert window_starts(8, 4, 2) == [0, 2, 4]
    assert window_starts(3, 4, 2) == [0]
    with pytest.raises(ConfigError):
        window_starts(10, 0, 1)


def test_windows_never_cross_videos_and_labels_line_up(synth: Path) -> None:
    sources = resolve_sources(synth, ["face", "audio"])
    ds = WindowDataset(synth, sources, length=32, hop=16, split="train")
    labels = read_table(synth, "frame_labels")
    n_frames = dict(read_table(synth, "videos").select("video_id", "n_frames").iter_rows())
    assert {v for v, _ in ds.items} == set(ds.videos["video_id"])
    for i in range(0, len(ds), 7):
        vid, start = ds.items[i]
        item = ds[i]
        real = int(item["mask"].sum())
        assert start + real <= n_frames[vid] and real == min(32, n_frames[vid] - start)
        want = labels.filter((pl.col("video_id") == vid) & (pl.col("frame") >= start)
                             & (pl.col("frame") < start + real)).sort("frame")["label"]
        assert item["labels"][:real].tolist() == want.to_list()
        assert item["face"].shape == (32, 16) and item["audio"].shape == (32, 8)
        got = ds.reader.read_rows(sources[0].feature_set, vid, "embedding", start, start + real)
        np.testing.assert_array_equal(item["face"][:real].numpy(), got)


def test_short_video_is_padded_and_masked(synth: Path) -> None:
    sources = resolve_sources(synth, ["face"])
    ds = WindowDataset(synth, sources, length=5000, hop=5000, split="train")
    item = ds[0]
    n = ds.reader.n_frames(ds.items[0][0])
    assert int(item["mask"].sum()) == n and float(item["face"][n:].abs().sum()) == 0.0


def test_loader_with_forked_workers(synth: Path) -> None:
    ds = WindowDataset(synth, resolve_sources(synth, ["face", "audio"]), length=24, hop=24,
                       split="train")
    ds.reader.labels(ds.items[0][0])  # parent has opened things before the fork
    loader = DataLoader(ds, batch_size=16, num_workers=2, collate_fn=collate,
                        multiprocessing_context="fork")
    seen = sum(int(b["index"].numel()) for b in loader)
    assert seen == len(ds)


def test_undersampler_keeps_all_positives() -> None:
    positive = np.array([True] * 5 + [False] * 50)
    s = NegativeUndersampler(positive, ratio=2.0, seed=1)
    idx = list(s)
    assert len(idx) == len(s) == 15 and set(range(5)) <= set(idx)
    s.set_epoch(1)
    assert sorted(set(s) - set(range(5))) != sorted(set(idx) - set(range(5)))


def test_participant_balanced_sampler() -> None:
    pids = np.array(["a"] * 90 + ["b"] * 10)
    s = ParticipantBalancedSampler(pids, num_samples=4000, seed=0)
    share_b = np.mean(np.array(list(s)) >= 90)
    assert 0.45 < share_b < 0.55


def test_participant_split_is_stratified(synth: Path) -> None:
    videos = read_table(synth, "videos")
    pid = videos["participant_id"][0]
    parts = participant_split(synth, pid)
    assert sorted(v for part in parts.values() for v in part) == sorted(
        videos.filter(pl.col("participant_id") == pid)["video_id"].to_list())
    assert all(parts[k] for k in ("train", "val", "test"))
    with pytest.raises(ConfigError, match="videos"):
        participant_split(synth, "nobody")


def test_unknown_modality_is_a_clear_error(synth: Path) -> None:
    from store.errors import NotFoundError
    with pytest.raises(NotFoundError, match="0 feature sets match 'words'"):
        resolve_sources(synth, ["words"])
