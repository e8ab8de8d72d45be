"""Crash safety and races, caused for real rather than mocked.

* ``bahfs extract`` is SIGKILLed (its whole process group: main process, Dask
  worker) at named points (``store.fault_points``: ``BAHFS_FAULT=<point>:<n>``) and while
  ffmpeg decodes, run after run over one store; a last run without a fault must
  leave the store equal to a clean run's.
* A video between its feature sets: the same with two feature sets, through
  ``flows.engine.extract_release`` in a child process.
* ``bahfs purge`` while ``bahfs extract`` is stopped (``<point>:<n>:stop``) at the
  worst moments: the participant must end up nowhere, and stay out after a
  re-delivery of the batch.

The runs report to one local Prefect server (started once, outside the killed
process groups), so that a kill costs a run rather than a server start.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from bahfs.sample.generate import SampleConfig
from flows.local import LocalPrefect
from store.ingest import ingest
from store.layout import STAGING, TRASH, features_root
from store.reader import FeatureReader
from store.tables import read_table

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

BAHFS = str(Path(sys.executable).with_name("bahfs"))
#: unique keys of the tables that have one (besides: no row twice in any table)
KEYS = {"videos": ["video_id"], "participants": ["participant_id"],
        "frame_labels": ["video_id", "frame"], "extracted": ["feature_set", "video_id"],
        "featuresets": ["feature_set"], "batches": ["source"], "extract_runs": ["run_id"],
        "quarantine": ["video_id", "stage"], "withdrawals": ["subject_sha256"]}


@pytest.fixture(scope="module")
def release(generated: Callable[[SampleConfig], Path]) -> Path:
    """Two consenting participants, one 11-13 s video each (shared: read-only)."""
    return generated(SampleConfig(participants=2, seed=5, max_questions=1, max_seconds=14.0,
                                  workers=2))


@pytest.fixture(scope="module")
def prefect(prefect_server: LocalPrefect) -> LocalPrefect:
    """The worker's shared Prefect server (every run here is a ``bahfs extract``)."""
    return prefect_server


def _session(sid: int) -> list[tuple[int, str, str, str]]:
    """``(pid, command name, state, command line)`` of the processes of session ``sid``."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            fields = text[text.rindex(")") + 2:].split()  # state ppid pgrp session ...
            if int(fields[3]) != sid:
                continue
            cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue  # gone meanwhile
        out.append((int(stat.parent.name), text[text.index("(") + 1:text.rindex(")")],
                    fields[0], cmd))
    return out


class Extract:
    """``bahfs extract RELEASE STORE`` (logmel, one Dask worker) in a session
    of its own, optionally with ``BAHFS_FAULT``."""

    def __init__(self, prefect: LocalPrefect, release: Path, store: Path, fault: str = ""
                 ) -> None:
        self.log = store.parent / f"{store.name}-{time.monotonic_ns()}.log"
        env = {**prefect.env, "BAHFS_FAULT": fault, "BAHFS_THREADS": "1"}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [BAHFS, "extract", str(release), str(store), "--extractors",
                 "logmel", "--workers", "1"], env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def wait_for(self, what: Callable[[tuple[int, str, str, str]], bool],
                 timeout_s: float = 120.0) -> int:
        """The pid of the first process of the run for which ``what`` holds."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.proc.poll() is None:
            for p in _session(self.proc.pid):
                if what(p):
                    return p[0]
            time.sleep(0.005)
        raise AssertionError(f"never seen (exit {self.proc.poll()}): {self.tail()}")

    def finish(self, timeout_s: float = 300.0) -> int:
        """Its exit status; nothing of the run is left running afterwards."""
        try:
            rc = self.proc.wait(timeout_s)
        finally:
            for pid, *_ in _session(self.proc.pid):  # stragglers of our own run only
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        return rc


def _state(store: Path) -> dict[str, Any]:
    """What a run leaves, timestamps and run ids aside; checks no row is there twice."""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    for f in sorted((store / "tables").glob("*.parquet")):
        df = read_table(store, f.stem)
        assert not df.is_duplicated().any(), f"a row twice in {f.stem}"
        if f.stem in KEYS:
            assert not df.select(KEYS[f.stem]).is_duplicated().any(), f"a key twice in {f.stem}"
        if f.stem != "extract_runs":  # one row per run: the killed runs have theirs
            volatile = [c for c in df.columns if c.endswith("_at") or c == "created"]
            tables[f.stem] = sorted(df.drop(volatile).rows(), key=repr)
    manifest = json.loads((store / "tables" / "_manifest.json").read_text())
    manifest.pop("ingested_at")
    reader = FeatureReader(store)
    features = {(fs, vid): reader.video(fs, vid)
                for fs in reader.featuresets() for vid in reader.extracted(fs)}
    return {"tables": tables, "manifest": manifest, "features": features}


def _assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["tables"].keys() == want["tables"].keys()
    for name in want["tables"]:
        assert got["tables"][name] == want["tables"][name], name
    assert got["manifest"] == want["manifest"]
    assert got["features"].keys() == want["features"].keys()
    for key, arrays in want["features"].items():
        assert got["features"][key].keys() == arrays.keys()
        for name, arr in arrays.items():
            np.testing.assert_array_equal(got["features"][key][name], arr, err_msg=str(key))


def _assert_clean(store: Path) -> None:
    """Nothing half done is left: no staging, no trash, no temporary file; verify passes."""
    for leftovers in (STAGING, TRASH):
        assert not (store / leftovers).is_dir() or not any((store / leftovers).iterdir())
    assert not list(store.rglob("*.tmp"))
    res = subprocess.run([BAHFS, "verify", str(store)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def _readable(store: Path) -> None:
    """A reader sees whole videos only, even right after a kill."""
    if not features_root(store).is_dir():
        return
    reader = FeatureReader(store)
    for fs in reader.featuresets():
        for vid in reader.extracted(fs):
            rows = {a.shape[0] for a in reader.video(fs, vid).values()}
            assert len(rows) == 1, (fs, vid, rows)


#: (fault, what the store holds when the run dies), run after run over one store
KILLS = [
    ("ingest:1", "the batch read and probed, no table written"),
    ("replace.parquet:3", "ingest: two tables merged, the third written, not renamed"),
    ("replace.json:1", "ingest: every table and the batch row written, not the manifest"),
    ("decode", "ffmpeg decoding the first video"),
    ("replace.json:2", "the feature set's group written, not the participant's"),
    ("staged:1", "a video's arrays in staging, not synced"),
    ("rename:1", "a video synced in staging, not renamed into place"),
    ("published:1", "the first video published, the second not begun"),
    ("replace.parquet:1", "every video published, the run's row not written"),
    ("replace.parquet:2", "the run's row written, the catalog not refreshed"),
]


def test_extract_killed_at_every_point_then_rerun_equals_a_clean_run(
        release: Path, prefect: LocalPrefect, tmp_path: Path) -> None:
    clean = Extract(prefect, release, tmp_path / "clean")
    assert clean.finish() == 0, clean.tail()
    store = tmp_path / "store"
    for fault, moment in KILLS:
        if fault == "decode":
            run = Extract(prefect, release, store)
            run.wait_for(lambda p: p[1] == "ffmpeg")
            os.killpg(run.proc.pid, signal.SIGKILL)
        else:
            run = Extract(prefect, release, store, fault)
        assert run.finish() == -signal.SIGKILL, f"{fault} ({moment}) not reached: {run.tail()}"
        _readable(store)
    last = Extract(prefect, release, store)
    assert last.finish() == 0, last.tail()
    _assert_same(_state(store), _state(tmp_path / "clean"))
    _assert_clean(store)


_TWO_SETS = """
import sys
from pathlib import Path
from extractors.audio import LogMelExtractor
from extractors.base import register
from flows.engine import extract_release

@register
class SecondLogMel(LogMelExtractor):
    name = "logmel_b"  # another class: another feature set id

extract_release(Path(sys.argv[1]), ("logmel", "logmel_b"))
"""


def _two_sets(store: Path, fault: str = "") -> int:
    return subprocess.run([sys.executable, "-c", _TWO_SETS, str(store)],
                          env={**os.environ, "BAHFS_FAULT": fault, "BAHFS_THREADS": "1"},
                          start_new_session=True, capture_output=True).returncode


def test_a_video_killed_between_its_feature_sets_is_completed(release: Path,
                                                              tmp_path: Path) -> None:
    clean, store = tmp_path / "clean", tmp_path / "store"
    for s in (clean, store):
        ingest(release, s, workers=2)
    assert _two_sets(clean) == 0
    # the first video in one feature set only; then, rerun, the second one likewise
    for fault in ("published:1", "published:2"):
        assert _two_sets(store, fault) == -signal.SIGKILL, fault
        sets_of: dict[str, int] = {}
        for v in features_root(store).glob("*/*/*/zarr.json"):
            sets_of[v.parent.name] = sets_of.get(v.parent.name, 0) + 1
        assert 1 in sets_of.values(), sets_of  # a video truly between its feature sets
    assert _two_sets(store) == 0
    _assert_same(_state(store), _state(clean))
    _assert_clean(store)


#: (fault, what the extraction is doing while the purge runs)
PURGES = [
    ("ingest:1:stop", "the batch read and probed, its tables not merged yet"),
    ("staged:1:stop", "the participant's video in staging, not published"),
    ("published:1:stop", "the participant's video just published"),
]


def _purged_participant(store: Path, batch: Path, fault: str) -> str:
    """The participant whose data the stopped extraction is holding."""
    if fault.startswith("staged"):
        (meta,) = (store / STAGING).glob("*/*/zarr.json")
    elif fault.startswith("published"):
        (meta,) = features_root(store).glob("*/*/*/zarr.json")
    else:
        return sorted(d.name for d in (batch / "Videos").iterdir())[0]
    return str(json.loads(meta.read_text())["attributes"]["participant_id"])


def _assert_nowhere(store: Path, pid: str) -> None:
    """``pid`` in no table (but as a withdrawal in ``exclusions``), no string cell of
    any table (video ids and paths hold the participant id), no feature set."""
    for f in sorted((store / "tables").glob("*.parquet")):
        df = read_table(store, f.stem)
        if f.stem == "exclusions":
            mine = df.filter(pl.col("participant_id") == pid)
            assert mine["reason"].to_list() in ([], ["withdrew consent (purged)"])
            df = df.filter(pl.col("participant_id") != pid)
        elif f.stem == "extract_runs":
            continue  # checked by the caller: a known gap
        text = df.select(pl.col(pl.String)).rows()
        assert not [r for r in text if any(pid in (c or "") for c in r)], f.stem
    assert not list(features_root(store).glob(f"*/{pid}"))
    _assert_clean(store)


def _run_log_names(store: Path, pid: str) -> bool:
    """Whether ``extract_runs.detail`` names a video of ``pid`` (video ids hold it)."""
    return any(pid in d for d in read_table(store, "extract_runs")["detail"].to_list())


@pytest.mark.parametrize("fault", [f for f, _ in PURGES])
def test_purge_while_extracting_leaves_the_participant_nowhere(
        fault: str, release: Path, prefect: LocalPrefect, tmp_path: Path) -> None:
    batch, store = tmp_path / "batch", tmp_path / "store"
    shutil.copytree(release, batch)
    run = Extract(prefect, batch, store, fault)
    stopped = run.wait_for(lambda p: p[2] == "T")
    pid = _purged_participant(store, batch, fault)
    # stopped in the first ingest, the participant is in no table yet: purge must be
    # told that their data has not arrived (it refuses ids the store does not hold)
    unheld = ["--not-arrived-yet"] if fault.startswith("ingest") else []
    purge = subprocess.run([BAHFS, "purge", str(store), "--participant", pid, *unheld],
                           capture_output=True, text=True, timeout=300)
    os.kill(stopped, signal.SIGCONT)
    assert purge.returncode == 0, purge.stdout + purge.stderr
    assert run.finish() == 0, run.tail()
    _assert_nowhere(store, pid)
    # the same batch delivered again (a new fingerprint): ingested, extracted, still out
    old = time.time() - 60
    os.utime(batch / "meta_data.yml", (old, old))
    again = Extract(prefect, batch, store)
    assert again.finish() == 0, again.tail()
    assert read_table(store, "batches")["fingerprint"].n_unique() == 1  # replaced, once
    _assert_nowhere(store, pid)
    others = set(read_table(store, "videos")["video_id"].to_list())
    reader = FeatureReader(store)
    assert others and all(set(reader.extracted(fs)) == others for fs in reader.featuresets())
    assert not _run_log_names(store, pid)  # the run's log does not name their videos
