"""The local cache of a bucket's arrays (``store/s3_cache.py``) against the moto
server on 127.0.0.1: the same values as the bucket, fetched once per array, a
republished video fetched again, withdrawn videos pruned, the byte bound kept."""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path

import numpy as np

from store.backend import VideoRef
from store.reader import FeatureReader
from store.s3 import S3Store
from store.s3_cache import S3Cache
from store.writer import FeatureWriter
from tests.store import s3_server
from tests.store.test_contract import FACE, VIDEOS, features, videos_table

#: FACE's arrays besides timestamps
ARRAYS = ["timestamps", *(a.name for a in FACE.arrays)]


def _bucket_store() -> S3Store:
    store = s3_server.new_store()
    store.write_table("videos", videos_table(VIDEOS))
    writer = FeatureWriter(store)
    for vid, pid, n in VIDEOS:
        writer.write(features(FACE, vid, pid, n))
    return store


def _cached(store: S3Store, root: Path, budget: int = 1 << 20) -> S3Store:
    return S3Store(store.bucket.address, store.bucket.config, S3Cache(root, budget))


def _read_all(store: S3Store) -> dict[tuple[str, str], np.ndarray]:
    reader = FeatureReader(store)
    return {(vid, k): v for vid, _, _ in VIDEOS
            for k, v in reader.video(FACE.id, vid, ARRAYS).items()}


def test_cached_reads_equal_the_bucket_and_fetch_each_array_once(tmp_path: Path) -> None:
    bucket = _bucket_store()
    want = _read_all(bucket)
    cold = _cached(bucket, tmp_path / "cache")
    got = _read_all(cold)
    assert got.keys() == want.keys()
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value)
    assert cold.cache is not None and cold.cache.stats.fetched == len(want)
    assert stat.S_IMODE(os.stat(tmp_path / "cache").st_mode) == 0o700
    warm = _cached(bucket, tmp_path / "cache")  # a new process's view: same folder
    again = _read_all(warm)
    for key, value in want.items():
        np.testing.assert_array_equal(again[key], value)
    assert warm.cache is not None and warm.cache.stats.fetched == 0
    assert warm.cache.stats.hits == len(want)
    # every other read the same (tables, feature-set metadata): two GETs an array fewer
    gets = cold.bucket.counts["get_object"] - warm.bucket.counts["get_object"]
    assert gets == 2 * len(want)
    text = b"".join(p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert b"testing-secret" not in text and b"testing-secret" not in pickle.dumps(warm)
    assert str(pickle.loads(pickle.dumps(warm)).cache.root) == str(tmp_path / "cache")


def test_a_republished_video_is_fetched_again_and_a_withdrawn_one_pruned(
        tmp_path: Path) -> None:
    bucket = _bucket_store()
    cached = _cached(bucket, tmp_path / "cache")
    _read_all(cached)
    vid, pid, n = VIDEOS[0]
    new = features(FACE, vid, pid, n)
    new.arrays["embedding"][:] = 7
    FeatureWriter(bucket).write(new, overwrite=True)
    fresh = _cached(bucket, tmp_path / "cache")
    got = FeatureReader(fresh).read_rows(FACE.id, vid, "embedding", 0, n)
    assert (got == 7).all() and fresh.cache is not None and fresh.cache.stats.fetched == 1
    bucket.unpublish(VideoRef(FACE.id, VIDEOS[1][1], VIDEOS[1][0]))
    # the republished video's old entry and the withdrawn video's entry
    assert fresh.prune_cache() == 2
    left = list((tmp_path / "cache" / "entries").iterdir())
    assert len(left) == len(VIDEOS) - 1
    assert not any(VIDEOS[1][0] in p.read_text()
                   for e in left for p in e.glob("entry.json"))


def test_the_folder_stays_under_its_budget(tmp_path: Path) -> None:
    bucket = _bucket_store()
    whole = _cached(bucket, tmp_path / "whole")
    want = _read_all(whole)
    assert whole.cache is not None and whole.cache.stats.evicted == 0
    small = _cached(bucket, tmp_path / "cache", budget=whole.cache.size() // 2)
    got = _read_all(small)
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value)
    assert small.cache is not None and small.cache.size() <= small.cache.budget
    assert small.cache.stats.evicted >= 1
    tiny = _cached(bucket, tmp_path / "tiny", budget=8)  # every array over the budget
    got = _read_all(tiny)
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value)
    assert tiny.cache is not None and tiny.cache.stats.fetched == 0 and tiny.cache.size() == 0
