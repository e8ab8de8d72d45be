"""Store locks: exclusive across processes, released when the holder dies."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pytest

from store.errors import BusyError, StoreError
from store.locks import store_lock, video_lock


def _hold(store: str, video: str, ready: mp.synchronize.Event) -> None:
    with store_lock(Path(store)), video_lock(Path(store), video) as mine:
        if mine:
            ready.set()
        time.sleep(60)


def test_locks_are_exclusive_and_die_with_their_holder(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold, args=(str(tmp_path), "v1", ready))
    holder.start()
    try:
        assert ready.wait(60)
        with video_lock(tmp_path, "v1") as mine:
            assert not mine
        with video_lock(tmp_path, "v2") as mine:
            assert mine  # other videos are free
        with pytest.raises(BusyError, match="locked") as exc, store_lock(tmp_path,
                                                                          timeout_s=0.3):
            pass
        assert "tables.lock" in str(exc.value)
        assert isinstance(exc.value, TimeoutError)  # callers may catch by kind
    finally:
        os.kill(holder.pid or 0, signal.SIGKILL)  # a crash: no cleanup code runs
        holder.join(10)
    with store_lock(tmp_path, timeout_s=5), video_lock(tmp_path, "v1") as mine:
        assert mine


def test_video_ids_cannot_escape_the_lock_folder(tmp_path: Path) -> None:
    with pytest.raises(StoreError), video_lock(tmp_path, "../x"):
        pass
