"""Locks on object storage: one small object per lock, taken by conditional writes.

A lock object holds ``{"owner": TAG, "at": seconds}``; ``owner`` is null once
released. TAG is ``<host>-<pid>-<random>`` (:func:`owner_tag`). Taking it:

* put it only where it is absent (``If-None-Match: *``); or
* where it exists, released or held by a dead owner, replace it only while it is
  the version read (``If-Match: <ETag>``): of two processes racing, one wins.

Its holder renews it every ``renew_s`` seconds while it holds it
(:mod:`store.s3_lease`). An owner is dead on this host when its process is gone
(at once), and on any host when its lock was not written for ``lease_s`` seconds
(:class:`store.s3_lease.Lease`, a minute by default) by the server's clock: the
object's ``Last-Modified`` against the ``Date`` of the same response. A SIGKILLed
holder's lock is therefore taken over at once on its own host, and after the lease
from elsewhere. A holder whose lock was taken over (or not renewed for its lease)
has lost it: :meth:`store.s3_lease.Holding.check` raises. Releasing writes
``owner: null`` only while the object is still the version this holder wrote.
Lock objects stay (as lock files do on a filesystem), except publish claims, which
their holder deletes (``If-Match`` too).

A holder whose lock could not be released (the server unreachable or refusing at
that moment) does not wait for it: the release is retried in the background
(:func:`finish`), every second until the server answers again (for at most the
lease), and this process counts the lock as released at once (its owner tag has
ended: :func:`owner_gone`). A run stopped by a server that went away thus leaves
no lock held by a live worker once the server is back.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from store.errors import BusyError, NotFoundError, ObjectStoreError
from store.layout import pid_alive
from store.s3_lease import LEASE_S, Holding, Lease, drop, hold
from store.s3_objects import Bucket

log = logging.getLogger("bahfs.store")
#: owner tags of this process whose holding ended without its release reaching the
#: store (being released in the background)
_ENDED: set[str] = set()
#: releases that failed, retried in the background: (action, give up at, pid)
_LATER: list[tuple[Callable[[], object], float, int]] = []
_LATER_LOCK = threading.Lock()
#: seconds between two tries of the releases that failed
RETRY_S = 1.0


def owner_tag() -> str:
    """``<host>-<pid>-<random>``: who holds a lock or a staging entry."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def owner_gone(tag: str | None, age_s: float, lease: Lease) -> bool:
    """Whether the holder named ``tag`` of a lock last written ``age_s`` seconds ago
    (by the server's clock) is dead or done (None: nobody holds it)."""
    if not tag or tag in _ENDED or lease.expired(age_s):
        return True
    host, _, pid_text = tag.rpartition("-")[0].rpartition("-")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    return host == socket.gethostname() and not pid_alive(pid)


def age(head: dict[str, object]) -> float:
    """Seconds since the object of ``head`` (:meth:`Bucket.head`) was written, by the
    server's clock."""
    return float(str(head["now"])) - float(str(head["modified"]))


def _body(owner: str | None, **extra: str) -> bytes:
    return json.dumps({"owner": owner, "at": time.time(), **extra}).encode()


def read_lock(bucket: Bucket, key: str) -> tuple[dict[str, object], str, float] | None:
    """(body, ETag, age in seconds by the server's clock) of the lock at ``key``;
    None when absent."""
    head = bucket.head(key)
    if head is None:
        return None
    try:
        body = json.loads(bucket.get(key))
    except NotFoundError:
        return None
    except ValueError:
        body = {}
    return body, str(head["etag"]), age(head)


def try_take(bucket: Bucket, key: str, owner: str, lease: Lease, **extra: str) -> str | None:
    """Take the lock at ``key`` for ``owner``: its ETag, or None while another holds it."""
    etag = bucket.put_new(key, _body(owner, **extra))
    if etag is not None:
        return etag
    found = read_lock(bucket, key)
    if found is None:  # released and removed in between: one more try
        return bucket.put_new(key, _body(owner, **extra))
    body, old, age_s = found
    holder = body.get("owner")
    if not owner_gone(holder if isinstance(holder, str) else None, age_s, lease):
        return None
    return bucket.put_match(key, _body(owner, **extra), old)


def release(bucket: Bucket, key: str, etag: str) -> None:
    """Mark the lock released, unless another process took it over meanwhile."""
    bucket.put_match(key, _body(None), etag)


def _retry_later() -> None:
    """The background thread: try the failed releases every ``RETRY_S`` until each
    succeeds or its time is up; ends when none is left."""
    while True:
        time.sleep(RETRY_S)
        with _LATER_LOCK:
            pending = [item for item in _LATER if item[2] == os.getpid()]
            _LATER.clear()
        left = []
        for action, until, pid in pending:
            try:
                action()
            except ObjectStoreError:
                if time.time() < until:
                    left.append((action, until, pid))
            except Exception as exc:  # a release is best effort: its lock is stale anyway
                log.warning("a lock release retried in the background failed: %s", exc)
        with _LATER_LOCK:
            _LATER.extend(left)
            if not _LATER:
                return


def finish(action: Callable[[], object], owner: str | None = None,
           give_up_s: float = LEASE_S) -> None:
    """Run ``action`` (a release, or a claim or staging entry deleted) now; where the
    object store cannot take it, in the background until it can (for at most
    ``give_up_s``: the lease, after which the lock is free anyway). ``owner``: the
    tag whose holding ends here."""
    try:
        action()
    except ObjectStoreError as exc:
        if owner is not None:
            _ENDED.add(owner)
        log.warning("released in the background once the object store answers: %s", exc)
        with _LATER_LOCK:
            start = not _LATER
            _LATER.append((action, time.time() + give_up_s, os.getpid()))
        if start:
            threading.Thread(target=_retry_later, name="bahfs-s3-release",
                             daemon=True).start()


def _holding(bucket: Bucket, key: str, etag: str, owner: str, lease: Lease, what: str,
             video: str | None = None, **extra: str) -> Holding:
    return hold(Holding(bucket, key, etag, lambda: _body(owner, **extra), lease, what,
                        video))


@contextmanager
def held(bucket: Bucket, key: str, timeout_s: float, what: str, lease: Lease
         ) -> Iterator[None]:
    """Hold the lock at ``key``, waiting up to ``timeout_s`` (BusyError after),
    renewed meanwhile; LeaseLostError at the end where it was lost on the way."""
    owner = owner_tag()
    deadline = time.monotonic() + timeout_s
    while (etag := try_take(bucket, key, owner, lease)) is None:
        if time.monotonic() > deadline:
            raise BusyError(f"{what} stayed locked for {timeout_s:.0f} s",
                            path=f"{bucket.address}/{key}",
                            expected="the other bahfs run to finish")
        time.sleep(0.05)
    holding = _holding(bucket, key, etag, owner, lease, what)
    try:
        yield
    finally:
        drop(holding)
        finish(lambda: release(bucket, key, holding.etag), owner, lease.lease_s)
    holding.check()


@contextmanager
def tried(bucket: Bucket, key: str, lease: Lease) -> Iterator[bool]:
    """Try the lock at ``key`` once; yields whether this process holds it (renewed
    while it does)."""
    owner = owner_tag()
    etag = try_take(bucket, key, owner, lease)
    holding = None if etag is None else _holding(bucket, key, etag, owner, lease, key)
    try:
        yield holding is not None
    finally:
        if holding is not None:
            drop(holding)
            finish(lambda: release(bucket, key, holding.etag), owner, lease.lease_s)


@contextmanager
def claimed(bucket: Bucket, key: str, target: str, video_id: str, wait_s: float,
            lease: Lease) -> Iterator[Holding]:
    """Hold the publish claim at ``key`` of the video written at ``target``, waiting
    up to ``wait_s`` for another writer's; renewed while held, deleted after (unless
    another process took it over). A dead holder's claim names its ``target``, which
    :func:`clean_claims` removes unless it was published."""
    owner = owner_tag()
    deadline = time.monotonic() + wait_s
    while (etag := try_take(bucket, key, owner, lease, target=target)) is None:
        if time.monotonic() > deadline:
            raise BusyError(f"video {video_id!r} stayed claimed by another writer",
                            video=video_id, expected="the other writer to finish")
        time.sleep(0.05)
    holding = _holding(bucket, key, etag, owner, lease,
                       f"the publish claim of video {video_id!r}", video_id, target=target)
    try:
        yield holding
    finally:
        drop(holding)
        finish(lambda: bucket.delete_match(key, holding.etag), owner, lease.lease_s)


@contextmanager
def announced(bucket: Bucket, key: str, tag: str, lease: Lease) -> Iterator[None]:
    """Announce the staging of the writer ``tag`` at ``key`` while it lives (renewed;
    deleted after unless another process removed it as a dead writer's)."""
    entry = json.dumps({"started": time.time()}).encode()
    holding = hold(Holding(bucket, key, bucket.put(key, entry), lambda: entry, lease,
                           f"staging entry {tag}"))
    try:
        yield
    finally:
        drop(holding)
        finish(lambda: bucket.delete_match(key, holding.etag), tag, lease.lease_s)


def clean_entries(bucket: Bucket, prefix: str, lease: Lease) -> list[str]:
    """Remove the staging entries under ``prefix`` of dead writers: their tags."""
    removed = []
    for key, _ in bucket.listing(prefix):
        tag = key.rpartition("/")[2]
        head = bucket.head(key)
        if head is not None and owner_gone(tag, age(head), lease):
            if bucket.delete_match(key, str(head["etag"])):
                removed.append(tag)
    return removed


def clean_claims(bucket: Bucket, prefix: str, published: Callable[[str], bool],
                 lease: Lease) -> None:
    """Remove the claims under ``prefix`` of dead writers, and the objects of the
    video each was writing where ``published(target)`` says it never got published:
    each claim is taken over first (``If-Match``), so no writer uploads that video
    while its objects are removed."""
    for key, _ in bucket.listing(prefix):
        found = read_lock(bucket, key)
        if found is None:
            continue
        body, etag, age_s = found
        owner, target = body.get("owner"), body.get("target")
        if not owner_gone(owner if isinstance(owner, str) else None, age_s, lease):
            continue
        mine = bucket.put_match(key, _body(owner_tag()), etag)
        if mine is None:
            continue  # taken over or renewed meanwhile
        if isinstance(target, str) and not published(target):
            bucket.delete_prefix(f"{target}/")
        bucket.delete_match(key, mine)
