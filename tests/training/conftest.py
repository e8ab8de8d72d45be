"""A store with a planted A/H signal, shared by the training tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from benchmarks.synthetic import SyntheticConfig, make_synthetic_store

PLANTED = SyntheticConfig(participants=16, videos_per_participant=3, mean_frames=300,
                          dims=(("face", 16), ("audio", 8)), shift=0.5, signal_dims=4)


@pytest.fixture(scope="session")
def synth(built: Callable[[str, Callable[[Path], None]], Path]) -> Path:
    """Tables + face (16-d, A/H frames shifted) and audio (8-d noise) features (made
    once per run; read-only)."""
    return built("planted", lambda root: make_synthetic_store(root / "store", PLANTED)) / "store"


@pytest.fixture(scope="session")
def synth_bucket(synth: Path) -> Iterator[str]:
    """The planted store copied into a fresh bucket of the moto server on 127.0.0.1
    (``tests/store/s3_server.py``), once (read-only); the AWS settings in this
    process's environment, as a user sets them, while the session runs."""
    from store.copy import copy_store
    from tests.store import s3_server

    with pytest.MonkeyPatch.context() as patch:
        for name, value in s3_server.env().items():
            patch.setenv(name, value)
        url = f"s3://{s3_server.new_bucket()}/store"
        copy_store(synth, url)
        yield url
