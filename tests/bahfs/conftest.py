"""A small extracted store for the review tests: the session's sample release with one
video replaced by garbage (quarantined at ingest) and one by another video of another
length (quarantined at extraction); the rest extracted with ``logmel`` (no model
files needed)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flows.engine import extract_release
from store.ingest import ingest
from store.tables import read_table


@pytest.fixture(scope="session")
def review_store(sample_release: Path, media: dict[str, tuple[Path, object]],
                 built: Callable[[str, Callable[[Path], None]], Path]) -> Path:
    """Built once per run (tests/conftest.py, ``built``); read-only."""
    def build(root: Path) -> None:
        release = root / "release"
        shutil.copytree(sample_release, release)
        probe = root / "probe"
        ingest(release, probe)
        videos = read_table(probe, "videos").filter(pl.col("split") != "train").sort(
            "video_id")
        garbage, other = videos["path"][0], videos["path"][1]
        (release / garbage).write_bytes(np.random.default_rng(0).bytes(50_000))
        ingest(release, root / "store")
        shutil.copy(media["fps30"][0], release / other)  # after ingest: frames do not match
        extract_release(root / "store", ("logmel",))

    return built("review", build) / "store"


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    """A store made by hand, no video: 3 participants (S0000-S0002) with 2 videos each,
    every ingest table (those the synthetic store lacks empty), one 4-d ``face``
    feature set with every video, the catalog tables written; valid for verify."""
    from benchmarks.synthetic import SyntheticConfig, make_synthetic_store
    from store.catalog import refresh_catalog
    from store.schema import INGEST_TABLES, empty
    from store.tables import table_exists, write_table

    store = tmp_path / "store"
    make_synthetic_store(store, SyntheticConfig(participants=3, videos_per_participant=2,
                                                mean_frames=80, dims=(("face", 4),)))
    for name in INGEST_TABLES:
        if not table_exists(store, name):
            write_table(store, name, empty(name))
    refresh_catalog(store)
    return store
