"""Contract tests of the feature store: writer, reader, purge, verify, export."""

from __future__ import annotations

import json
import multiprocessing as mp
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import zarr

from store.access import load_policy
from store.catalog import refresh_catalog
from store.consent import subject_hash
from store.errors import StoreError
from store.export import export_baseline
from store.features import ArraySpec, FeatureSetSpec, VideoFeatures
from store.ingest import ingest
from store.layout import STAGING, features_root, video_dir
from store.purge import _append, purge_participant
from store.reader import FeatureReader
from store.schema import TABLES
from store.tables import read_table
from store.verify import verify_store
from store.writer import FeatureWriter

SPEC = FeatureSetSpec("face", {"size": 112, "model": "test"}, "ab" * 32,
                      (ArraySpec("embedding", "float16", (16,)), ArraySpec("has_face", "bool"),
                       ArraySpec("box", "float32", (4,))))


def make_features(spec: FeatureSetSpec, vid: str, pid: str, n: int, salt: int = 0
                  ) -> VideoFeatures:
    rng = np.random.default_rng(zlib.crc32(vid.encode()) + salt)
    return VideoFeatures(spec, vid, pid, np.arange(n) / 24.0, {
        "embedding": rng.standard_normal((n, 16)).astype(np.float16),
        "has_face": rng.random(n) > 0.3,
        "box": rng.random((n, 4)).astype(np.float32)})


def _videos(store: Path) -> list[tuple[str, str, int]]:
    return list(read_table(store, "videos").select("video_id", "participant_id", "n_frames")
                .iter_rows())


@pytest.fixture
def store(sample_release: Path, tmp_path: Path) -> Path:
    s = tmp_path / "store"
    ingest(sample_release, s)
    return s


@pytest.fixture
def filled(store: Path) -> Path:
    w = FeatureWriter(store)
    for vid, pid, n in _videos(store):
        assert w.write(make_features(SPEC, vid, pid, n)).outcome == "written"
    return store


def test_round_trip_exact_fast_path_and_plain_zarr(filled: Path) -> None:
    reader = FeatureReader(filled)
    root = zarr.open_group(str(features_root(filled)), mode="r")
    for vid, pid, n in _videos(filled):
        want = make_features(SPEC, vid, pid, n)
        got = reader.video(SPEC.id, vid)
        assert set(got) == {"timestamps", "embedding", "has_face", "box"}
        np.testing.assert_array_equal(got["timestamps"], want.timestamps)
        for name, arr in want.arrays.items():
            np.testing.assert_array_equal(got[name], arr)
            np.testing.assert_array_equal(root[f"{SPEC.id}/{pid}/{vid}/{name}"][...], arr)
            assert got[name].shape[0] == n
        part = reader.frames(SPEC.id, vid, 3, 9, ["embedding"])["embedding"]
        np.testing.assert_array_equal(part, want.arrays["embedding"][3:9])
    assert root[SPEC.id].attrs["model_sha256"] == SPEC.model_sha256
    assert reader.resolve("face") == SPEC.id


def test_compressed_arrays_read_through_zarr(store: Path) -> None:
    vid, pid, n = _videos(store)[0]
    w = FeatureWriter(store)
    w.write(make_features(SPEC, vid, pid, n))
    path = video_dir(store, SPEC.id, pid, vid)
    data = make_features(SPEC, vid, pid, n).arrays["embedding"]
    shutil.rmtree(path / "embedding")
    g = zarr.open_group(str(path), mode="a")
    g.create_array("embedding", shape=data.shape, chunks=(7, 16), dtype="float16")[...] = data
    np.testing.assert_array_equal(FeatureReader(store).read_rows(SPEC.id, vid, "embedding",
                                                                 5, 20), data[5:20])


def test_rewrite_is_a_noop_unless_overwrite(filled: Path) -> None:
    vid, pid, n = _videos(filled)[0]
    w = FeatureWriter(filled)
    assert w.write(make_features(SPEC, vid, pid, n, salt=1)).outcome == "skipped"
    old = make_features(SPEC, vid, pid, n).arrays["embedding"]
    np.testing.assert_array_equal(FeatureReader(filled).read_rows(SPEC.id, vid, "embedding",
                                                                  0, n), old)
    assert w.write(make_features(SPEC, vid, pid, n, salt=1), overwrite=True).outcome \
        == "overwritten"
    new = make_features(SPEC, vid, pid, n, salt=1).arrays["embedding"]
    np.testing.assert_array_equal(FeatureReader(filled).read_rows(SPEC.id, vid, "embedding",
                                                                  0, n), new)


def test_bad_output_is_refused_before_writing() -> None:
    with pytest.raises(StoreError, match="expected: float16\\[10, 16\\]"):
        VideoFeatures(SPEC, "v", "p", np.arange(10) / 24.0, {
            "embedding": np.zeros((9, 16), np.float16), "has_face": np.zeros(10, bool),
            "box": np.zeros((10, 4), np.float32)})
    with pytest.raises(StoreError, match="exactly"):
        VideoFeatures(SPEC, "v", "p", np.arange(10) / 24.0, {})


_KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from store.writer import FeatureWriter
from test_features import SPEC, make_features
orig = FeatureWriter._build
def build_then_die(path, features):
    orig(path, features)          # every array written ...
    os.kill(os.getpid(), signal.SIGKILL)   # ... and killed before publishing
FeatureWriter._build = staticmethod(build_then_die)
FeatureWriter(Path({store!r})).write(make_features(SPEC, {vid!r}, {pid!r}, {n}))
"""


def test_writer_killed_mid_write_leaves_nothing_visible(store: Path) -> None:
    vid, pid, n = _videos(store)[0]
    script = _KILL_SCRIPT.format(tests=str(Path(__file__).parent), store=str(store), vid=vid,
                                 pid=pid, n=n)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False)
    assert proc.returncode == -9, proc.stderr.decode()
    assert any((store / STAGING).iterdir())  # the half-published video is only in staging
    w = FeatureWriter(store)  # a new writer removes dead writers' staging
    assert not w.exists(SPEC.id, pid, vid)
    assert list((store / STAGING).iterdir()) == []
    assert w.write(make_features(SPEC, vid, pid, n)).outcome == "written"
    assert FeatureReader(store).extracted(SPEC.id) == [vid]


def _write_some(args: tuple[str, list[tuple[str, str, int]]]) -> list[str]:
    store, items = args
    w = FeatureWriter(Path(store))
    return [w.write(make_features(SPEC, v, p, n)).outcome for v, p, n in items]


def test_concurrent_writers(store: Path) -> None:
    items = _videos(store)
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:  # different videos at once, then all of them twice at once
        split = [(str(store), items[i::4]) for i in range(4)]
        outcomes = [o for part in pool.map(_write_some, split) for o in part]
        assert outcomes.count("written") == len(items)
        again = [o for part in pool.map(_write_some, [(str(store), items)] * 3) for o in part]
        assert set(again) == {"skipped"}
    reader = FeatureReader(store)
    assert sorted(reader.extracted(SPEC.id)) == sorted(v for v, _, _ in items)
    for vid, pid, n in items:
        np.testing.assert_array_equal(reader.read_rows(SPEC.id, vid, "box", 0, n),
                                      make_features(SPEC, vid, pid, n).arrays["box"])
    assert verify_store(store) == []


def test_windows_and_labels_line_up(filled: Path) -> None:
    reader = FeatureReader(filled)
    labels = read_table(filled, "frame_labels")
    vid, _, n = max(_videos(filled), key=lambda r: r[2])
    batch = reader.windows({"face": (SPEC.id, "embedding"), "mask": (SPEC.id, "has_face")},
                           [(vid, 0), (vid, n - 48)], 48)
    assert batch["face"].shape == (2, 48, 16) and batch["mask"].shape == (2, 48)
    want = labels.filter(pl.col("video_id") == vid).sort("frame")["label"].to_numpy()
    np.testing.assert_array_equal(batch["labels"][1], want[n - 48:])
    with pytest.raises(StoreError, match="outside video"):
        reader.windows({"face": (SPEC.id, "embedding")}, [(vid, n - 10)], 48)


def test_gather_pads_casts_and_refuses(filled: Path) -> None:
    reader = FeatureReader(filled)
    (vid, _, n), (vid2, _, n2) = _videos(filled)[:2]
    box = reader.read_rows(SPEC.id, vid, "box", 0, n)
    out = np.full((2, n + 5, 4), 7, np.float16)
    got = reader.gather(SPEC.id, "box", [(vid, 0), (vid2, n2 - 3)], n + 5, out, pad=True)
    assert got is out
    np.testing.assert_array_equal(out[0, :n], box.astype(np.float16))
    assert not out[0, n:].any() and not out[1, 3:].any()
    np.testing.assert_array_equal(out[1, :3], reader.read_rows(SPEC.id, vid2, "box", n2 - 3,
                                                               n2).astype(np.float16))
    with pytest.raises(StoreError, match="outside video"):
        reader.gather(SPEC.id, "box", [(vid, n - 2)], 4)
    with pytest.raises(StoreError, match="out has shape"):
        reader.gather(SPEC.id, "box", [(vid, 0)], 4, np.empty((1, 4, 3), np.float32))


def _child_read(reader: FeatureReader, vid: str, n: int, q: mp.Queue) -> None:  # type: ignore[type-arg]
    q.put(reader.read_rows(SPEC.id, vid, "embedding", 0, n).tobytes())


def test_reader_is_safe_across_fork(filled: Path) -> None:
    reader = FeatureReader(filled)
    vid, _, n = _videos(filled)[0]
    parent = reader.read_rows(SPEC.id, vid, "embedding", 0, n).tobytes()
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_read, args=(reader, vid, n, q))
    p.start()
    child = q.get(timeout=30)
    p.join(30)
    assert child == parent and p.exitcode == 0


def test_purge_removes_participant_everywhere(filled: Path, sample_release: Path) -> None:
    vid, pid, _ = _videos(filled)[0]
    other = next(v for v, p, _ in _videos(filled) if p != pid)
    run_log = json.dumps({"quarantined": {vid: f"bad | participant: {pid}", other: "bad"},
                          "busy": [vid, other], "model_loads_per_worker": {"h:1": 1}},
                         sort_keys=True)
    _append(filled, "extract_runs", {"run_id": "r1", "detail": run_log})
    report = purge_participant(filled, pid, operator="tester")
    assert report.feature_videos_removed >= 1 and report.rows_removed["videos"] >= 1
    assert not (features_root(filled) / SPEC.id / pid).exists()
    for name, cols in TABLES.items():
        if "participant_id" in cols and (filled / "tables" / f"{name}.parquet").exists():
            assert pid not in read_table(filled, name)["participant_id"].to_list(), name
    audit = read_table(filled, "audit")
    assert audit["action"].to_list() == ["purge"]
    assert audit["subject_sha256"][0] == subject_hash(pid)
    assert pid not in audit.write_csv()  # no personal data, not even the id
    runs = read_table(filled, "extract_runs")  # a run's log no longer names their videos
    assert pid not in runs.write_csv() and json.loads(runs["detail"][0]) == {
        "quarantined": {other: "bad"}, "busy": [other], "model_loads_per_worker": {"h:1": 1}}
    assert verify_store(filled) == []
    # consent is remembered: a new ingest of the same release leaves them out
    report2 = ingest(sample_release, filled)
    assert report2.excluded[pid] == "withdrew consent (purged)"
    assert pid not in read_table(filled, "videos")["participant_id"].to_list()
    purge_participant(filled, pid)  # idempotent: finishes or repeats safely
    assert read_table(filled, "withdrawals").height == 1


def _damage(store: Path, kind: str) -> str:
    vid, pid, n = _videos(store)[0]
    vdir = video_dir(store, SPEC.id, pid, vid)
    if kind == "orphan":
        shutil.copytree(vdir, vdir.parent / "P999__Visite_1__Q1")
        return "orphan"
    if kind == "row_count":
        meta = json.loads((vdir / "zarr.json").read_text())
        meta["attributes"]["n_frames"] = n + 1
        (vdir / "zarr.json").write_text(json.dumps(meta))
        return "n_frames"
    if kind == "truncated_chunk":
        f = vdir / "embedding" / "c" / "0" / "0"
        f.write_bytes(f.read_bytes()[:100])
        return "chunk holds 100 bytes"
    if kind == "missing_array":
        shutil.rmtree(vdir / "box")
        return "'box' missing"
    if kind == "provenance":
        meta_path = features_root(store) / SPEC.id / "zarr.json"
        meta = json.loads(meta_path.read_text())
        del meta["attributes"]["model_sha256"]
        meta_path.write_text(json.dumps(meta))
        return "no provenance"
    if kind == "labels":
        fl = read_table(store, "frame_labels")
        fl.filter(~((pl.col("video_id") == vid) & (pl.col("frame") == 0))).write_parquet(
            store / "tables" / "frame_labels.parquet")
        return f"{n - 1} labels for {n} frames"
    if kind == "withdrawn":
        from store.purge import _append
        _append(store, "withdrawals", {"subject_sha256": subject_hash(pid), "withdrawn_at": ""})
        return "withdrawn participant"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["orphan", "row_count", "truncated_chunk", "missing_array",
                                  "provenance", "labels", "withdrawn"])
def test_verify_catches_each_kind_of_damage(filled: Path, kind: str) -> None:
    assert verify_store(filled) == []
    needle = _damage(filled, kind)
    problems = [str(p) for p in verify_store(filled) if p.severity == "error"]
    assert problems and any(needle in p for p in problems), problems


def test_verify_warns_about_staging_leftovers(filled: Path) -> None:
    load_policy(filled).make_dirs(filled / STAGING / "host-1-abc")  # as a writer makes it
    problems = verify_store(filled)
    assert [p.severity for p in problems] == ["warning"]


def test_catalog_tables(filled: Path) -> None:
    fsets, ext = refresh_catalog(filled)
    assert fsets["feature_set"].to_list() == [SPEC.id]
    assert fsets["videos"][0] == len(_videos(filled)) == ext.height
    assert fsets["rows"][0] == sum(n for _, _, n in _videos(filled))
    assert read_table(filled, "extracted").height == ext.height


def test_export_baseline_layout(filled: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    report = export_baseline(filled, out, {"face": "face:embedding"})
    assert report.videos == len(_videos(filled))
    videos = read_table(filled, "videos")
    for row in videos.iter_rows(named=True):
        stem = Path(row["release_id"]).with_suffix("")  # mirrors the release id
        feats = np.load(out / "face" / f"{stem}.npy")
        labels = np.load(out / "labels" / f"{stem}.npy")
        assert feats.shape == (row["n_frames"], 16) and labels.shape == (row["n_frames"],)
        assert labels.max() == row["global_label"]
    lines = sum(len((out / f"{s}.txt").read_text().splitlines())
                for s in ("train", "val", "test") if (out / f"{s}.txt").exists())
    assert lines == videos.height


def test_readable_with_xarray_without_bahfs(filled: Path) -> None:
    """A video group opens as an xarray Dataset indexed by frame (plain zarr + xarray)."""
    code = f"""
import sys, xarray as xr
sys.modules['bahfs'] = None; sys.modules['store'] = None   # prove bahfs is not needed
ds = xr.open_zarr({str(features_root(filled))!r}, group={{group!r}}, consolidated=False)
print(ds.sizes['frame'], ds['embedding'].shape, float(ds['timestamps'][1]))
"""
    vid, pid, n = _videos(filled)[0]
    group = f"{SPEC.id}/{pid}/{vid}"
    out = subprocess.run([sys.executable, "-c", code.replace("{group!r}", repr(group))],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(n), f"({n},", "16)", str(1 / 24.0)]


def test_verify_sees_a_lost_video_and_fix_requeues_it(filled: Path) -> None:
    """A published video deleted from a feature set after the catalog recorded it."""
    from typer.testing import CliRunner

    from bahfs.cli import app
    from flows.job import pending_jobs

    refresh_catalog(filled)  # as every extract run does when it ends
    vid, pid, _ = _videos(filled)[0]
    shutil.rmtree(video_dir(filled, SPEC.id, pid, vid))
    problems = [str(p) for p in verify_store(filled)]
    assert any(vid in p and "lost" in p for p in problems), problems
    runner = CliRunner()
    assert runner.invoke(app, ["verify", str(filled)]).exit_code == 1
    fixed = runner.invoke(app, ["verify", str(filled), "--fix"])
    assert fixed.exit_code == 0, fixed.output
    assert f"re-queued {vid}" in fixed.output and "store is valid" in fixed.output
    todo, _ = pending_jobs(filled, [SPEC.id])
    assert [j.video_id for j in todo] == [vid]  # the next extract restores it


def test_every_file_is_synced_before_the_publishing_rename(store: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    """A power loss cannot publish a video whose chunks are not on disk: each file
    of the staged video is fsynced before the rename, the rename after it."""
    import store.layout as layout

    synced: list[str] = []
    real = layout._fsync
    monkeypatch.setattr(layout, "_fsync", lambda p: (synced.append(p), real(p)))
    vid, pid, n = _videos(store)[0]
    FeatureWriter(store).write(make_features(SPEC, vid, pid, n))
    final = video_dir(store, SPEC.id, pid, vid)
    published = {p.relative_to(final).as_posix() for p in final.rglob("*")}
    staged = [Path(p) for p in synced[:-1]]
    root = next(p for p in staged if p.name == vid)  # the staged video folder
    assert {p.relative_to(root).as_posix() for p in staged if p != root} == published
    assert synced[-1] == str(final.parent)  # the folder holding the rename, last


def test_staging_of_a_dead_writer_on_another_host_is_cleaned(store: Path) -> None:
    """Another machine's processes cannot be seen: its staging is stale once untouched
    for hours (a video takes seconds to minutes to write)."""
    import os
    import time

    from store.layout import STALE_REMOTE_S

    old = store / STAGING / "other-host-4242-deadbeef"
    (old / "82553__Visite_1__Q1").mkdir(parents=True)
    (old / "82553__Visite_1__Q1" / "zarr.json").write_text("{}")
    fresh = store / STAGING / "other-host-4343-cafebabe"
    fresh.mkdir(parents=True)
    past = time.time() - STALE_REMOTE_S - 60
    for p in (old, *old.rglob("*")):
        os.utime(p, (past, past))
    vid, pid, n = _videos(store)[0]
    FeatureWriter(store).write(make_features(SPEC, vid, pid, n))  # a writer cleans up
    assert not old.exists() and fresh.exists()
