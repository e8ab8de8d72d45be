"""A stateful property test of the store: hypothesis runs the store's operations in
random order against a simple model and checks the invariants after every step.

Steps: ingest a batch, publish a video, purge a participant, quarantine a video and
release it, migrate the face feature set to a new id, crash mid-publish at a fault
point (a forked writer killed there, as ``store.fault_points`` kills a real one), reopen
(a new store object, the next writer's start, the catalog refreshed). Invariants: a
withdrawn participant has no file anywhere in the store; every published video reads
back with ``n_frames`` rows, its numbers and its provenance; ``verify`` reports no
error, and nothing at all once recovered; nothing published is lost, and nothing
appears that was not published. Hand-made arrays; no video, no model.

The same machine runs on the local backend and on the S3 backend (a fresh bucket of
the moto server on 127.0.0.1, ``tests/store/s3_server.py``), with the same steps and
invariants; reopening the S3 store unpickles it, as a worker receives it. The suite's
budget is fixed below (smaller on S3, whose every request crosses HTTP);
``BAHFS_STATEFUL_EXAMPLES`` and ``BAHFS_STATEFUL_STEPS`` (read only here) give a
longer run by hand (``docs/testing.md``).
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from store import fault_points
from store.backend import Store
from store.catalog import refresh_catalog
from store.fault_points import FAULT_ENV
from store.features import ArraySpec, FeatureSetSpec, VideoFeatures
from store.ingest import quarantine_rows
from store.local import LocalStore
from store.migrate import migrate_feature_sets
from store.purge import purge_participant
from store.quarantine import release
from store.reader import FeatureReader
from store.schema import INGEST_TABLES, TABLES
from store.verify import verify_store
from store.writer import FeatureWriter
from tests.store import s3_server

EXAMPLES = int(os.environ.get("BAHFS_STATEFUL_EXAMPLES", "15"))
STEPS = int(os.environ.get("BAHFS_STATEFUL_STEPS", "20"))
S3_EXAMPLES = int(os.environ.get("BAHFS_STATEFUL_EXAMPLES", "3"))
S3_STEPS = int(os.environ.get("BAHFS_STATEFUL_STEPS", "10"))
ARRAYS = {"face": (ArraySpec("embedding", "float16", (3,)), ArraySpec("has_face", "bool")),
          "voice": (ArraySpec("energy", "float32"),)}


def spec_of(label: str, generation: int = 0) -> FeatureSetSpec:
    """The feature set of ``label``; a migration moves face to the next generation."""
    return FeatureSetSpec(label, {"generation": generation}, "ef" * 32, ARRAYS[label])


def features(spec: FeatureSetSpec, vid: str, pid: str, n: int) -> VideoFeatures:
    """The same numbers for a video under every id of its feature set."""
    rng = np.random.default_rng(sum(map(ord, spec.extractor + vid)))
    arrays = {a.name: (rng.random((n, *a.shape)) > 0.5 if a.dtype == "bool" else
                       rng.standard_normal((n, *a.shape)).astype(a.dtype))
              for a in spec.arrays}
    return VideoFeatures(spec, vid, pid, np.arange(n) / 24.0, arrays)


def rows(table: str, records: list[dict[str, Any]]) -> pl.DataFrame:
    """``records`` as rows of ``table``, the columns they leave out null."""
    return pl.DataFrame([{c: r.get(c) for c in TABLES[table]} for r in records],
                        schema=pl.Schema(TABLES[table]))


def append(store: Store, table: str, df: pl.DataFrame) -> None:
    store.write_table(table, pl.concat([store.read_table_or_empty(table), df]))


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="bahfs-stateful-")) / "store"
        self.store: Store = self.new_store()
        for table in INGEST_TABLES:
            self.store.write_table(table, rows(table, []))
        self.videos: dict[str, tuple[str, int]] = {}  # ingested, not withdrawn
        self.withdrawn: set[str] = set()
        self.published: set[tuple[str, str]] = set()  # (label, video)
        self.quarantined: set[str] = set()
        self.specs = {label: spec_of(label) for label in ARRAYS}
        self.previous: list[str] = []  # ids face had before
        self.staging_left = False
        self.participants = 0

    def new_store(self) -> Store:
        return LocalStore(self.root)

    def reopened(self) -> Store:
        return LocalStore(self.root)

    def teardown(self) -> None:
        shutil.rmtree(self.root.parent, ignore_errors=True)

    # -- steps -----------------------------------------------------------------------
    @rule(frames=st.lists(st.integers(2, 12), min_size=1, max_size=3))
    def ingest_batch(self, frames: list[int]) -> None:
        self.participants += 1
        pid = f"p{self.participants:03d}"
        new = {f"{pid}__q{i}": n for i, n in enumerate(frames, 1)}
        with self.store.lock():
            append(self.store, "participants", rows("participants", [{"participant_id": pid}]))
            append(self.store, "videos", rows("videos", [
                {"video_id": v, "participant_id": pid, "n_frames": n, "global_label": 0}
                for v, n in new.items()]))
            append(self.store, "frame_labels", rows("frame_labels", [
                {"video_id": v, "participant_id": pid, "frame": f, "label": 0}
                for v, n in new.items() for f in range(n)]))
        self.videos.update({v: (pid, n) for v, n in new.items()})

    @precondition(lambda self: self.videos)
    @rule(data=st.data(), label=st.sampled_from(sorted(ARRAYS)))
    def publish(self, data: st.DataObject, label: str) -> None:
        vid = data.draw(st.sampled_from(sorted(self.videos)))
        pid, n = self.videos[vid]
        FeatureWriter(self.store).write(features(self.specs[label], vid, pid, n))
        self.published.add((label, vid))

    @precondition(lambda self: self.videos)
    @rule(data=st.data())
    def purge(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(sorted({p for p, _ in self.videos.values()})))
        purge_participant(self.store, pid, operator="stateful")
        self.withdrawn.add(pid)
        gone = {v for v, (p, _) in self.videos.items() if p == pid}
        self.videos = {v: pn for v, pn in self.videos.items() if v not in gone}
        self.published = {(lb, v) for lb, v in self.published if v not in gone}
        self.quarantined -= gone

    @precondition(lambda self: set(self.videos) - self.quarantined)
    @rule(data=st.data())
    def quarantine(self, data: st.DataObject) -> None:
        vid = data.draw(st.sampled_from(sorted(set(self.videos) - self.quarantined)))
        with self.store.lock():
            append(self.store, "quarantine", quarantine_rows(
                self.store.read_table("videos"), {vid: "undecodable"}, "extract"))
        self.quarantined.add(vid)

    @precondition(lambda self: self.quarantined)
    @rule(data=st.data())
    def release_quarantined(self, data: st.DataObject) -> None:
        vid = data.draw(st.sampled_from(sorted(self.quarantined)))
        assert release(self.store, [vid], operator="stateful").released == {vid: "extract"}
        self.quarantined.discard(vid)

    @rule()
    def migrate_face(self) -> None:
        old = self.specs["face"]
        new = spec_of("face", int(old.config["generation"]) + 1)

        def convert(attrs: dict[str, Any]) -> dict[str, Any] | None:
            return {**attrs, **new.to_attrs()} if attrs["id"] == old.id else None

        held = old.id in self.store.feature_set_ids()
        moved = migrate_feature_sets(self.store, convert)
        assert moved == ({old.id: new.id} if held else {})
        refresh_catalog(self.store)  # as the extract run that migrates does, at its end
        self.specs["face"] = new
        if held:
            self.previous.append(old.id)

    @precondition(lambda self: self.videos)
    @rule(data=st.data(), label=st.sampled_from(sorted(ARRAYS)),
          point=st.sampled_from(["staged", "rename", "published"]))
    def crash_mid_publish(self, data: st.DataObject, label: str, point: str) -> None:
        vid = data.draw(st.sampled_from(sorted(self.videos)))
        if (label, vid) in self.published:
            return  # a publish that would skip never reaches a fault point
        pid, n = self.videos[vid]
        self.store.ensure_feature_set(self.specs[label])  # its own fault point: not here
        child = os.fork()
        if child == 0:  # the writer, in a process group of its own, killed at `point`
            os.setsid()
            os.environ[FAULT_ENV] = f"{point}:1"
            fault_points._hits.clear()
            try:
                FeatureWriter(self.store).write(features(self.specs[label], vid, pid, n))
            finally:
                os._exit(1)  # the fault point kills it first
        _, status = os.waitpid(child, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        if point == "published":
            self.published.add((label, vid))
        self.staging_left = True  # its staging folder, emptied or not

    @rule()
    def reopen(self) -> None:
        self.store = self.reopened()
        FeatureWriter(self.store)  # the next writer removes what dead ones left
        refresh_catalog(self.store)
        self.staging_left = False

    # -- invariants ------------------------------------------------------------------
    @invariant()
    def withdrawn_participants_leave_no_file(self) -> None:
        for pid in self.withdrawn:
            assert [k for k in self.store.keys() if pid in k] == []
            assert [k for k in self.store.keys() if k.endswith(".json")
                    and pid.encode() in self.store.read_key(k)] == []
            for table in TABLES:
                if "participant_id" in TABLES[table]:
                    held = self.store.read_table_or_empty(table)["participant_id"].to_list()
                    assert pid not in held, table

    @invariant()
    def published_videos_read_back_and_nothing_else_appears(self) -> None:
        ids = {spec.id: label for label, spec in self.specs.items()}
        stored = {(ids[r.feature_set], r.video_id) for r in self.store.all_videos()}
        assert stored == self.published
        if not self.store.has_features():
            return
        reader = FeatureReader(self.store)
        for old in self.previous:
            assert reader.resolve(old) == self.specs["face"].id
        for label, vid in sorted(self.published):
            spec = self.specs[label]
            assert self.store.spec(spec.id) == spec
            pid, n = self.videos[vid]
            got = reader.video(spec.id, vid)
            assert {k: v.shape[0] for k, v in got.items()} == {
                "timestamps": n, **{a.name: n for a in spec.arrays}}
            for name, want in features(spec, vid, pid, n).arrays.items():
                np.testing.assert_array_equal(got[name], want)

    @invariant()
    def verify_finds_nothing_once_recovered(self) -> None:
        problems = verify_store(self.store)
        if self.staging_left:  # a dead writer's leftovers, named, until the next writer
            problems = [p for p in problems if not p.where.startswith(".staging/")]
        assert [str(p) for p in problems] == []


class S3StoreMachine(StoreMachine):
    """The same steps and invariants on a store in a fresh bucket."""

    def new_store(self) -> Store:
        return s3_server.new_store()

    def reopened(self) -> Store:
        reopened: Store = pickle.loads(pickle.dumps(self.store))
        return reopened


StoreMachine.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
S3StoreMachine.TestCase.settings = settings(
    max_examples=S3_EXAMPLES, stateful_step_count=S3_STEPS, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_store_state_machine = StoreMachine.TestCase
test_s3_store_state_machine = S3StoreMachine.TestCase
