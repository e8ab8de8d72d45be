"""Shared fixtures: one small generated release, rendered once per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bahfs.release import codebook as cb
from bahfs.sample.generate import SampleConfig, generate

SAMPLE_CFG = SampleConfig(participants=4, seed=7, max_questions=2, max_seconds=14.0, workers=2)


@pytest.fixture(scope="session")
def sample_config() -> SampleConfig:
    """The options the session's sample release was generated with."""
    return SAMPLE_CFG


@pytest.fixture(scope="session")
def sample_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated release with real videos (read-only: copy before changing it)."""
    root = tmp_path_factory.mktemp("release")
    generate(root, SAMPLE_CFG)
    return root


@pytest.fixture
def mutable_release(sample_release: Path, tmp_path: Path) -> Path:
    """A copy of the sample release whose annotation files a test may edit.

    Videos are shared through a symlink (they are large and never edited here).
    """
    root = tmp_path / "release"
    root.mkdir()
    for item in sample_release.iterdir():
        if item.name == cb.VIDEOS_DIR:
            (root / item.name).symlink_to(item, target_is_directory=True)
        elif item.is_dir():
            shutil.copytree(item, root / item.name)
        else:
            shutil.copy2(item, root / item.name)
    return root
