"""The store tests' S3 server (``tests/store/s3_server.py``): one per test process,
stopped when the session ends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.store import s3_server


@pytest.fixture(scope="session", autouse=True)
def _s3_server_stops() -> Iterator[None]:
    yield
    s3_server.stop()
