"""Locks on object storage: one small object per lock, taken by conditional writes.

A lock object holds ``{"owner": TAG, "at": seconds}``; ``owner`` is null once
released. TAG is ``<host>-<pid>-<random>`` (:func:`owner_tag`). Taking it:

* put it only where it is absent (``If-None-Match: *``); or
* where it exists, released or held by a dead owner, replace it only while it is
  the version read (``If-Match: <ETag>``): of two processes racing, one wins.

An owner is dead on this host when its process is gone; on another host (whose
processes cannot be seen) when its lock was not written for ``lease_s`` seconds
(the staging rule of :mod:`store.layout`, six hours by default). A SIGKILLed
holder's lock is therefore taken over at once on its own host, and after the
lease from elsewhere. Releasing writes ``owner: null`` only while the object is
still the version this holder wrote. Lock objects stay (as lock files do on a
filesystem), except publish claims, which their holder deletes.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from store.errors import BusyError, NotFoundError
from store.layout import STALE_REMOTE_S
from store.s3_objects import Bucket


def owner_tag() -> str:
    """``<host>-<pid>-<random>``: who holds a lock or a staging entry."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_gone(tag: str | None, written_at: float, lease_s: float = STALE_REMOTE_S) -> bool:
    """Whether the holder named ``tag`` is dead (None: nobody holds it)."""
    if not tag:
        return True
    host, _, pid_text = tag.rpartition("-")[0].rpartition("-")
    try:
        pid = int(pid_text)
    except ValueError:
        return time.time() - written_at > lease_s
    if host == socket.gethostname():
        return not _pid_alive(pid)
    return time.time() - written_at > lease_s


def _body(owner: str | None, **extra: str) -> bytes:
    return json.dumps({"owner": owner, "at": time.time(), **extra}).encode()


def read_lock(bucket: Bucket, key: str) -> tuple[dict[str, object], str, float] | None:
    """(body, ETag, last written) of the lock at ``key``; None when absent."""
    head = bucket.head(key)
    if head is None:
        return None
    try:
        body = json.loads(bucket.get(key))
    except NotFoundError:
        return None
    except ValueError:
        body = {}
    return body, str(head["etag"]), float(head["modified"])


def try_take(bucket: Bucket, key: str, owner: str, lease_s: float = STALE_REMOTE_S,
             **extra: str) -> str | None:
    """Take the lock at ``key`` for ``owner``: its ETag, or None while another holds it."""
    etag = bucket.put_new(key, _body(owner, **extra))
    if etag is not None:
        return etag
    found = read_lock(bucket, key)
    if found is None:  # released and removed in between: one more try
        return bucket.put_new(key, _body(owner, **extra))
    body, old, written = found
    holder = body.get("owner")
    if not owner_gone(holder if isinstance(holder, str) else None, written, lease_s):
        return None
    return bucket.put_match(key, _body(owner, **extra), old)


def release(bucket: Bucket, key: str, etag: str) -> None:
    """Mark the lock released, unless another process took it over meanwhile."""
    bucket.put_match(key, _body(None), etag)


@contextmanager
def held(bucket: Bucket, key: str, timeout_s: float, what: str) -> Iterator[None]:
    """Hold the lock at ``key``, waiting up to ``timeout_s`` (BusyError after)."""
    owner = owner_tag()
    deadline = time.monotonic() + timeout_s
    while (etag := try_take(bucket, key, owner)) is None:
        if time.monotonic() > deadline:
            raise BusyError(f"{what} stayed locked for {timeout_s:.0f} s",
                            path=f"{bucket.address}/{key}",
                            expected="the other bahfs run to finish")
        time.sleep(0.05)
    try:
        yield
    finally:
        release(bucket, key, etag)


@contextmanager
def tried(bucket: Bucket, key: str) -> Iterator[bool]:
    """Try the lock at ``key`` once; yields whether this process holds it."""
    etag = try_take(bucket, key, owner_tag())
    try:
        yield etag is not None
    finally:
        if etag is not None:
            release(bucket, key, etag)


@contextmanager
def claimed(bucket: Bucket, key: str, target: str, video_id: str, wait_s: float
            ) -> Iterator[None]:
    """Hold the publish claim at ``key`` of the video written at ``target``, waiting
    up to ``wait_s`` for another writer's; deleted after. A dead holder's claim names
    its ``target``, which :func:`clean_claims` removes unless it was published."""
    owner = owner_tag()
    deadline = time.monotonic() + wait_s
    while try_take(bucket, key, owner, target=target) is None:
        if time.monotonic() > deadline:
            raise BusyError(f"video {video_id!r} stayed claimed by another writer",
                            video=video_id, expected="the other writer to finish")
        time.sleep(0.05)
    try:
        yield
    finally:
        bucket.delete(key)


def clean_claims(bucket: Bucket, prefix: str, published: Callable[[str], bool]) -> None:
    """Remove the claims under ``prefix`` of dead writers, and the objects of the
    video each was writing where ``published(target)`` says it never got published."""
    for key, _ in bucket.listing(prefix):
        found = read_lock(bucket, key)
        if found is None:
            continue
        body, _, written = found
        owner, target = body.get("owner"), body.get("target")
        if not owner_gone(owner if isinstance(owner, str) else None, written):
            continue
        if isinstance(target, str) and not published(target):
            bucket.delete_prefix(f"{target}/")
        bucket.delete(key)
