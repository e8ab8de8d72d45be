"""The contract of the store interface (:class:`store.backend.Store`), written once and
run against every backend, as zarr-python's ``StoreTests`` serves every zarr store.

A backend joins by adding a factory to :data:`BACKENDS` (a function from an empty
scratch folder to a new, empty store of that backend); every test here must then
pass unchanged. Data is small and hand-made: no video, no model.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from store.backend import Store, VideoRef
from store.errors import BusyError, NotFoundError
from store.features import ArraySpec, FeatureSetSpec, VideoFeatures
from store.local import LocalStore
from store.migrate import migrate_feature_sets
from store.purge import purge_participant
from store.reader import FeatureReader
from store.verify import verify_store
from store.writer import FeatureWriter
from tests.store import s3_server

#: backend name -> factory of an empty store in a scratch folder
BACKENDS: dict[str, Callable[[Path], Store]] = {
    "local": lambda scratch: LocalStore(scratch / "store"),
    # a fresh bucket of the moto server on 127.0.0.1 (tests/store/s3_server.py)
    "s3": s3_server.new_store,
}

FACE = FeatureSetSpec("face", {"size": 8}, "ab" * 32,
                      (ArraySpec("embedding", "float16", (3,)), ArraySpec("has_face", "bool")))
VOICE = FeatureSetSpec("voice", {"hop": 2}, "cd" * 32, (ArraySpec("energy", "float32"),))
#: (video, participant, frames)
VIDEOS = [("alice__q1", "alice", 7), ("alice__q2", "alice", 5), ("bob__q1", "bob", 9)]


def features(spec: FeatureSetSpec, vid: str, pid: str, n: int) -> VideoFeatures:
    rng = np.random.default_rng(sum(map(ord, spec.id + vid)))
    arrays = {a.name: (rng.random((n, *a.shape)) > 0.5 if a.dtype == "bool" else
                       rng.standard_normal((n, *a.shape)).astype(a.dtype))
              for a in spec.arrays}
    return VideoFeatures(spec, vid, pid, np.arange(n) / 24.0, arrays)


def videos_table(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    return pl.DataFrame({"video_id": [r[0] for r in rows], "participant_id": [r[1] for r in rows],
                         "n_frames": [r[2] for r in rows]}).with_columns(
        pl.lit(None).alias(c) for c in ("visit", "question", "release_id", "path", "source",
                                        "duration_s", "fps", "has_audio", "global_label",
                                        "split", "annotator_id", "transcript"))


@pytest.fixture(params=sorted(BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    made: Store = BACKENDS[request.param](tmp_path)
    return made


@pytest.fixture
def filled(store: Store) -> Store:
    store.write_table("videos", videos_table(VIDEOS))
    writer = FeatureWriter(store)
    for spec in (FACE, VOICE):
        for vid, pid, n in VIDEOS:
            assert writer.write(features(spec, vid, pid, n)).outcome == "written"
    return store


class TestStore:
    """Every backend passes these."""

    def test_published_videos_read_back_with_n_frames_and_provenance(self, filled: Store
                                                                     ) -> None:
        assert filled.spec(FACE.id) == FACE
        reader = FeatureReader(filled)
        for vid, pid, n in VIDEOS:
            ref = VideoRef(FACE.id, pid, vid)
            assert filled.video_attrs(ref)["n_frames"] == n
            got = reader.video(FACE.id, vid)
            want = features(FACE, vid, pid, n)
            assert {k: v.shape[0] for k, v in got.items()} == {
                "timestamps": n, "embedding": n, "has_face": n}
            for name, arr in want.arrays.items():
                np.testing.assert_array_equal(got[name], arr)
            assert filled.array_meta(ref, "embedding").shape == (n, 3)

    def test_listing(self, filled: Store) -> None:
        assert filled.feature_set_ids() == sorted([FACE.id, VOICE.id])
        assert filled.participants(FACE.id) == ["alice", "bob"]
        assert [r.video_id for r in filled.video_entries(FACE.id, "alice")] == [
            "alice__q1", "alice__q2"]
        assert filled.videos(VOICE.id) == sorted(VideoRef(VOICE.id, p, v) for v, p, _ in VIDEOS)
        assert len(list(filled.all_videos())) == 2 * len(VIDEOS)
        assert filled.feature_sets()[VOICE.id] == VOICE

    def test_publishing_again_skips_unless_overwrite(self, filled: Store) -> None:
        writer = FeatureWriter(filled)
        again = features(FACE, "bob__q1", "bob", 9)
        assert writer.write(again).outcome == "skipped"
        assert writer.write(again, overwrite=True).outcome == "overwritten"
        assert filled.video_attrs(VideoRef(FACE.id, "bob", "bob__q1"))["n_frames"] == 9

    def test_a_staged_video_is_invisible_until_committed(self, store: Store) -> None:
        writer = FeatureWriter(store)
        writer.ensure_featureset(FACE)
        ref = VideoRef(FACE.id, "alice", "alice__q1")
        with store.staging() as stage:
            writer._build(stage / ref.video_id, features(FACE, ref.video_id, "alice", 7))
            assert not store.is_published(ref)
            assert store.videos(FACE.id) == []
            assert len(store.staging_entries()) == 1
            assert store.commit(stage / ref.video_id, ref) == "written"
        assert store.videos(FACE.id) == [ref]
        assert store.staging_entries() == []

    def test_unpublish_removes_the_video_and_an_emptied_participant(self, filled: Store
                                                                    ) -> None:
        filled.unpublish(VideoRef(FACE.id, "bob", "bob__q1"))
        filled.unpublish(VideoRef(FACE.id, "alice", "alice__q1"))
        assert filled.participants(FACE.id) == ["alice"]
        assert [r.video_id for r in filled.videos(FACE.id)] == ["alice__q2"]
        assert len(filled.videos(VOICE.id)) == len(VIDEOS)

    def test_tables_round_trip(self, store: Store) -> None:
        assert not store.table_exists("videos")
        with pytest.raises(NotFoundError):
            store.read_table("videos")
        assert store.read_table_or_empty("videos").height == 0
        store.write_table("videos", videos_table(VIDEOS))
        got = store.read_table("videos")
        assert got.select("video_id", "participant_id", "n_frames").rows() == VIDEOS
        assert got.schema["n_frames"] == pl.Int32
        assert store.read_columns("videos", ["video_id"]) == {
            "video_id": [v for v, _, _ in VIDEOS]}

    def test_cached_table_is_reread_when_another_writer_replaces_it(self, store: Store
                                                                    ) -> None:
        store.write_table("videos", videos_table(VIDEOS))
        first = store.table("videos")
        assert store.table("videos") is first  # unchanged: the cached frame
        other = pickle.loads(pickle.dumps(store))  # the same store, opened elsewhere
        other.write_table("videos", videos_table(VIDEOS[:1]))
        assert store.table("videos").height == 1
        with pytest.raises(NotFoundError):  # never written
            store.table("splits")

    def test_table_lock_excludes_a_second_holder(self, store: Store) -> None:
        other = pickle.loads(pickle.dumps(store))
        with store.lock(), pytest.raises(BusyError):
            with other.lock(timeout_s=0.2):
                pass
        with other.lock(timeout_s=0.2):
            pass

    def test_video_lock_is_held_once(self, store: Store) -> None:
        with store.video_lock("alice__q1") as mine:
            with store.video_lock("alice__q1") as again:
                assert (mine, again) == (True, False)
            with store.video_lock("bob__q1") as free:
                assert free
        assert store.remove_video_lock("alice__q1")
        assert not store.remove_video_lock("alice__q1")

    def test_stale_staging_of_a_dead_writer_is_cleaned(self, store: Store) -> None:
        pid = os.fork()
        if pid == 0:  # a writer that dies mid-write: no cleanup runs
            with store.staging() as stage:
                (stage / "half").write_bytes(b"x")
                os.kill(os.getpid(), signal.SIGKILL)
        os.waitpid(pid, 0)
        assert len(store.staging_entries()) == 1
        with store.staging():  # a live writer's entry stays
            assert len(store.clean_staging()) == 1
            assert len(store.staging_entries()) == 1
        assert store.staging_entries() == []

    def test_purge_removes_every_file_of_a_participant(self, filled: Store) -> None:
        with filled.video_lock("alice__q2"):
            pass
        report = purge_participant(filled, "alice", operator="test")
        assert report.feature_videos_removed == 4
        keys = filled.keys()
        assert [k for k in keys if "alice" in k] == []
        assert [k for k in keys if not k.endswith(".parquet")
                and b"alice" in filled.read_key(k)] == []
        assert "alice" not in filled.read_table("videos")["participant_id"].to_list()
        assert [r.participant_id for r in filled.all_videos()] == ["bob", "bob"]

    def test_migration_renames_and_merges_feature_sets(self, filled: Store) -> None:
        old = FeatureSetSpec("face", {"size": 8, "batch": 4}, FACE.model_sha256, FACE.arrays)
        writer = FeatureWriter(filled)
        for vid, pid, n in (VIDEOS[0], VIDEOS[2]):  # one also in FACE, one not
            same = features(FACE, vid, pid, n)  # a run option changes no number
            writer.write(VideoFeatures(old, vid, pid, same.timestamps, same.arrays))
        filled.unpublish(VideoRef(FACE.id, "bob", "bob__q1"))
        new = FeatureSetSpec("face", {"size": 8, "v": 2}, FACE.model_sha256, FACE.arrays)

        def convert(attrs: dict[str, Any]) -> dict[str, Any] | None:
            return {**attrs, **new.to_attrs()} if attrs["extractor"] == "face" else None

        moved = migrate_feature_sets(filled, convert)
        assert moved == {FACE.id: new.id, old.id: new.id}
        assert filled.feature_set_ids() == sorted([new.id, VOICE.id])
        assert filled.feature_set_attrs(new.id)["previous_ids"] == sorted([FACE.id, old.id])
        assert [r.video_id for r in filled.videos(new.id)] == [v for v, _, _ in VIDEOS]
        assert migrate_feature_sets(filled, convert) == {}  # done: a quick check
        reader = FeatureReader(filled)
        assert reader.resolve(old.id) == new.id
        for vid, pid, n in VIDEOS:
            np.testing.assert_array_equal(reader.video(new.id, vid)["embedding"],
                                          features(FACE, vid, pid, n).arrays["embedding"])

    def test_a_fresh_store_has_no_access_drift(self, filled: Store) -> None:
        assert filled.access_drift() == []
        assert [p for p in verify_store(filled) if "access" in p.what] == []
