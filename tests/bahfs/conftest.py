"""A small extracted store for the review tests: the session's sample release with one
video replaced by garbage (quarantined at ingest) and one by another video of another
length (quarantined at extraction); the rest extracted with ``logmel`` (no model
files needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flows.job import extract_release
from store.ingest import ingest
from store.tables import read_table


@pytest.fixture(scope="session")
def review_store(sample_release: Path, media: dict[str, tuple[Path, object]],
                 tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("review")
    release = root / "release"
    shutil.copytree(sample_release, release)
    probe = root / "probe"
    ingest(release, probe)
    videos = read_table(probe, "videos").filter(pl.col("split") != "train").sort("video_id")
    garbage, other = videos["path"][0], videos["path"][1]
    (release / garbage).write_bytes(np.random.default_rng(0).bytes(50_000))
    store = root / "store"
    ingest(release, store)
    shutil.copy(media["fps30"][0], release / other)  # after ingest: frames do not match
    extract_release(store, ("logmel",))
    return store
