"""Renewed short leases of the S3 backend (store.s3_lease): a dead holder's lock is
taken over after the lease on any host, a live holder keeps it, and a holder that
lost its claim publishes nothing. Leases of 2 s, renewed every 0.5 s."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from store import s3
from store.backend import VideoRef
from store.errors import BusyError, LeaseLostError
from store.layout import STAGING
from store.locks import LOCKS, video_lock_name
from store.s3 import S3Store
from store.s3_lease import CLOCK_STEP_S, Holding
from tests.store import s3_server

LEASE_S, RENEW_S = 2.0, 0.5
FOREIGN = "other-host-4242-deadbeef"


def _store(address: object = None) -> S3Store:
    return S3Store(address or s3_server.new_store().bucket.address, s3_server.config(),
                   lease_s=LEASE_S, renew_s=RENEW_S)


def _foreign(owner: str = FOREIGN, **extra: str) -> bytes:
    return json.dumps({"owner": owner, "at": 0, **extra}).encode()


def test_a_foreign_hosts_lock_is_taken_over_after_the_lease_and_not_before() -> None:
    store = _store()
    store.bucket.put(f"{LOCKS}/{video_lock_name('v1')}", _foreign())
    written = time.monotonic()
    while True:
        with store.video_lock("v1") as got:
            if got:
                break
        assert time.monotonic() - written < LEASE_S + 2 * CLOCK_STEP_S + 1
        time.sleep(0.25)
    assert time.monotonic() - written >= LEASE_S


def test_a_live_holder_keeps_its_lock_past_several_leases() -> None:
    holder = _store()
    other = _store(holder.bucket.address)
    key = f"{LOCKS}/{video_lock_name('v1')}"
    with holder.video_lock("v1") as got:
        assert got
        first = holder.bucket.head(key)
        until = time.monotonic() + 2.5 * LEASE_S
        while time.monotonic() < until:
            with other.video_lock("v1") as taken:
                assert not taken
            time.sleep(0.5)
        last = holder.bucket.head(key)
    assert first is not None and last is not None and first["etag"] != last["etag"]
    with other.video_lock("v1") as taken:  # released at the end
        assert taken


def test_the_table_lock_is_renewed_too() -> None:
    holder = _store()
    other = _store(holder.bucket.address)
    with holder.lock():
        time.sleep(LEASE_S + 2 * CLOCK_STEP_S)
        with pytest.raises(BusyError):
            with other.lock(timeout_s=0.2):
                pass


def _staged(root: Path) -> Path:
    (root / "a" / "c").mkdir(parents=True)
    (root / "a" / "c" / "0").write_bytes(b"chunk")
    (root / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    return root


def test_a_holder_whose_claim_was_taken_over_publishes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store()
    ref = VideoRef("fs1", "p1", "v1")
    claim = store._claim_key(ref)

    def taken_over(point: str) -> None:  # another host takes the claim meanwhile
        if point == "staged":
            store.bucket.put(claim, _foreign(target="elsewhere"))

    monkeypatch.setattr(s3, "fault_point", taken_over)
    with pytest.raises(LeaseLostError, match="v1") as err:
        store.commit(_staged(tmp_path), ref)
    assert err.value.video == "v1"
    assert not store.is_published(ref) and store.video_entries("fs1", "p1") == []
    assert json.loads(store.bucket.get(claim))["owner"] == FOREIGN  # left to its taker


def test_a_holder_that_could_not_renew_for_its_lease_publishes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store()
    ref = VideoRef("fs1", "p1", "v1")

    def renewal_stopped(self: Holding) -> None:  # the server never answered
        return None

    def stalled(point: str) -> None:
        if point == "staged":
            monkeypatch.setattr(Holding, "renew", renewal_stopped)
            time.sleep(LEASE_S)

    monkeypatch.setattr(s3, "fault_point", stalled)
    with pytest.raises(LeaseLostError, match="not renewed"):
        store.commit(_staged(tmp_path), ref)
    assert not store.is_published(ref)
    assert store.bucket.listing(f"{store._video_key(ref)}/") == []  # nothing uploaded


def test_a_commit_with_its_claim_renewed_publishes(tmp_path: Path) -> None:
    store = _store()
    ref = VideoRef("fs1", "p1", "v1")
    assert store.commit(_staged(tmp_path), ref) == "written"
    assert store.is_published(ref)
    assert store.bucket.listing(f"{LOCKS}/publish/") == []


def test_a_foreign_dead_writers_staging_and_claim_are_cleaned_after_the_lease() -> None:
    store = _store()
    ref = VideoRef("fs1", "p1", "v1")
    target = store._video_key(ref)
    store.bucket.put(f"{STAGING}/{FOREIGN}", b"{}")
    store.bucket.put(store._claim_key(ref), _foreign(target=target))
    store.bucket.put(f"{target}/a/c/0", b"chunk")
    assert store.clean_staging() == []
    time.sleep(LEASE_S + 2 * CLOCK_STEP_S)
    assert store.clean_staging() == [FOREIGN]
    assert store.bucket.listing("") == []
