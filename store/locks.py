"""Locks that keep concurrent runs from stepping on each other.

* :func:`store_lock` serialises read-modify-write of the Parquet tables (ingest of a
  batch, quarantine rows, the catalog, purge). Blocking, with a timeout.
* :func:`video_lock` claims one video for extraction. Non-blocking: a run that finds
  the video claimed moves on (the other run is doing it), so two runs at once never
  process the same video twice.

Both are ``flock`` locks on small files under ``STORE/.locks``: the kernel releases
them when the holder exits, even by ``kill -9``, so a crashed run never leaves a stale
lock behind. Lock files are never deleted (deleting a lock file races with a process
about to lock it). On a multi-node Dask cluster the store must live on a filesystem
whose ``flock`` is honoured across hosts (NFSv4, Lustre/BeeGFS with flock enabled,
CephFS); ``docs/operations.md`` says more.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from store.access import load_policy
from store.errors import BusyError
from store.layout import check_name

LOCKS = ".locks"


def _lock_file(store: Path, name: str) -> int:
    access = load_policy(store)
    folder = access.make_dirs(Path(store) / LOCKS)
    fd = os.open(folder / name, os.O_RDWR | os.O_CREAT, access.file_mode)
    st = os.fstat(fd)
    if st.st_uid == os.geteuid() and stat.S_IMODE(st.st_mode) != access.file_mode:
        os.fchmod(fd, access.file_mode)  # made now, under the umask
    if access.gid is not None and st.st_uid == os.geteuid() and st.st_gid != access.gid:
        os.fchown(fd, -1, access.gid)
    return fd


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise


@contextmanager
def store_lock(store: Path, timeout_s: float = 600.0) -> Iterator[None]:
    """Hold the store's table lock; raise :class:`BusyError` after ``timeout_s``."""
    fd = _lock_file(store, "tables.lock")
    try:
        deadline = time.monotonic() + timeout_s
        while not _try_flock(fd):
            if time.monotonic() > deadline:
                raise BusyError(f"the store's tables stayed locked for {timeout_s:.0f} s",
                                path=Path(store) / LOCKS / "tables.lock",
                                expected="the other bahfs run to finish")
            time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def video_lock_name(video_id: str) -> str:
    """The lock file (under ``STORE/.locks``) that claims ``video_id``."""
    return f"video-{check_name('video', video_id)}.lock"


@contextmanager
def video_lock(store: Path, video_id: str) -> Iterator[bool]:
    """Try to claim ``video_id``; yields True when this process holds it."""
    fd = _lock_file(store, video_lock_name(video_id))
    try:
        yield _try_flock(fd)
    finally:
        os.close(fd)
