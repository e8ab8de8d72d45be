"""Renewed leases of the S3 backend's locks, publish claims and staging entries.

A holder keeps each lock object it holds alive by rewriting it every ``renew_s``
seconds with ``If-Match`` on the ETag it last wrote (:class:`Holding`), all of a
process's holdings by one background thread (started with the first holding, ended
with the last, none in a forked child). Anyone may take over a lock whose last write
is older than ``lease_s`` (:meth:`Lease.expired`), by the server's clock alone: the
lock object's ``Last-Modified`` against the ``Date`` of the same response.

A holding is lost, and its holder must stop what the lock guards, when

* a renewal finds the object changed or gone (another process took it over after
  the lease ran out, or removed it as a dead writer's); or
* no renewal reached the server for ``lease_s`` seconds by this host's monotonic
  clock, counted from when the last successful one was sent (the server
  unreachable: renewals are retried every ``RETRY_S`` until then). The server
  stamped that write later than it was sent, so the holder gives up before any
  other process may take over.

:meth:`Holding.check` raises :class:`store.errors.LeaseLostError` for a lost holding;
:meth:`Holding.confirm` renews at once and checks (a commit does so right before it
publishes).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from store.errors import ConfigError, LeaseLostError, ObjectStoreError
from store.s3_objects import Bucket

log = logging.getLogger("bahfs.store")
#: seconds without a write after which any process may take a lock over
LEASE_S = 60.0
#: seconds between two renewals of a held lock, claim or staging entry
RENEW_S = 10.0
#: seconds between two tries of a renewal the server did not answer
RETRY_S = 1.0
#: resolution of the server's ``Last-Modified`` and ``Date`` (whole seconds): an age
#: read from them may be short by up to this much
CLOCK_STEP_S = 1.0


@dataclass(frozen=True)
class Lease:
    """How long a lock lives without a write (``lease_s``), and how often its holder
    rewrites it (``renew_s``)."""

    lease_s: float = LEASE_S
    renew_s: float = RENEW_S

    def __post_init__(self) -> None:
        if not 0 < self.renew_s < self.lease_s:
            raise ConfigError(f"lease of {self.lease_s} s renewed every {self.renew_s} s",
                              expected="0 < renew_s < lease_s (e.g. 10 s and 60 s)")

    def expired(self, age_s: float) -> bool:
        """Whether a lock last written ``age_s`` seconds ago (by the server's
        whole-second clock) may be taken over: surely older than ``lease_s``."""
        return age_s > self.lease_s + CLOCK_STEP_S


class Holding:
    """One lock object held by this process, renewed in the background."""

    def __init__(self, bucket: Bucket, key: str, etag: str, body: Callable[[], bytes],
                 lease: Lease, what: str, video: str | None = None) -> None:
        self.bucket, self.key, self.etag, self.body = bucket, key, etag, body
        self.lease, self.what, self.video = lease, what, video
        self.renewed = time.monotonic()  # when the last successful write was sent
        self.due = self.renewed + lease.renew_s
        self.reason: str | None = None  # why it was lost
        self.dropped = False
        self._lock = threading.Lock()

    @property
    def lost(self) -> bool:
        if self.reason is None and time.monotonic() - self.renewed >= self.lease.lease_s:
            self.reason = f"not renewed for its lease of {self.lease.lease_s:.0f} s"
        return self.reason is not None

    def renew(self) -> None:
        """One conditional rewrite (no-op once dropped or lost)."""
        with self._lock:
            if self.dropped or self.lost:
                return
            sent = time.monotonic()
            try:
                etag = self.bucket.put_match(self.key, self.body(), self.etag)
            except ObjectStoreError as exc:
                self.due = time.monotonic() + RETRY_S
                if not self.lost:
                    log.warning("renewing %s failed, retrying: %s", self.what, exc)
                return
            if etag is None:
                self.reason = "taken over by another process after its lease ran out"
                log.warning("%s lost: %s", self.what, self.reason)
                return
            self.etag, self.renewed, self.due = etag, sent, sent + self.lease.renew_s

    def check(self) -> None:
        """Raise :class:`LeaseLostError` when the holding is lost."""
        if self.lost:
            raise LeaseLostError(f"{self.what} was lost: {self.reason}",
                                 path=f"{self.bucket.address}/{self.key}",
                                 video=self.video,
                                 expected="a reachable object store; run again")

    def confirm(self) -> None:
        """Renew now and :meth:`check`: the lock is this holder's for a lease more."""
        self.renew()
        self.check()


_HOLDINGS: list[Holding] = []
_WAKE = threading.Condition()
_RUNNING: list[bool] = [False]


def _renew_all() -> None:
    """The background thread: renew each holding when due; ends with the last."""
    while True:
        with _WAKE:
            if not _HOLDINGS:
                _RUNNING[0] = False
                return
            now = time.monotonic()
            due = [h for h in _HOLDINGS if h.due <= now]
            if not due:
                _WAKE.wait(min(h.due for h in _HOLDINGS) - now)
                continue
        for holding in due:
            try:
                holding.renew()
            except Exception as exc:  # the thread must outlive one odd failure
                holding.due = time.monotonic() + RETRY_S
                log.warning("renewing %s failed: %s", holding.what, exc)


def hold(holding: Holding) -> Holding:
    """Renew ``holding`` in the background from now on."""
    with _WAKE:
        _HOLDINGS.append(holding)
        _WAKE.notify()
        if not _RUNNING[0]:
            _RUNNING[0] = True
            threading.Thread(target=_renew_all, name="bahfs-s3-lease", daemon=True).start()
    return holding


def drop(holding: Holding) -> None:
    """Stop renewing ``holding`` (a renewal in flight finishes first)."""
    with _WAKE:
        if holding in _HOLDINGS:
            _HOLDINGS.remove(holding)
    with holding._lock:
        holding.dropped = True


def _forked() -> None:  # a child holds nothing of its parent's, and has no thread
    global _WAKE
    _WAKE = threading.Condition()
    _HOLDINGS.clear()
    _RUNNING[0] = False


os.register_at_fork(after_in_child=_forked)
