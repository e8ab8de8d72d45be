"""The store's access policy: every path bahfs writes gets it, whatever the umask;
verify names drift and --fix repairs it; owner-only and a named group."""

from __future__ import annotations

import grp
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bahfs.cli import app
from store.access import ACCESS_FILE, drifting, fix_drift, load_policy, make_policy, save_policy
from store.catalog import refresh_catalog
from store.export import export_baseline
from store.features import ArraySpec, FeatureSetSpec, VideoFeatures
from store.ingest import ingest
from store.layout import staging_dir
from store.locks import store_lock, video_lock
from store.plots import plot_stats
from store.stats import all_stats
from store.tables import read_table
from store.verify import verify_store
from store.writer import FeatureWriter

runner = CliRunner()
SPEC = FeatureSetSpec("face", {"model": "test"}, "ab" * 32,
                      (ArraySpec("embedding", "float16", (16,)),))


def make_features(spec: FeatureSetSpec, vid: str, pid: str, n: int) -> VideoFeatures:
    return VideoFeatures(spec, vid, pid, np.arange(n) / 24.0,
                         {"embedding": np.ones((n, 16), np.float16)})


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _make_store(release: Path, store: Path, everything: bool = True) -> None:
    """What bahfs writes into a store: tables and manifest (ingest), Zarr groups,
    metadata and chunks (the writer), the catalog, locks, staging; with
    ``everything``, plots and an export too."""
    ingest(release, store)
    writer = FeatureWriter(store)
    for vid, pid, n in read_table(store, "videos").select(
            "video_id", "participant_id", "n_frames").head(2).iter_rows():
        writer.write(make_features(SPEC, vid, pid, n))
    refresh_catalog(store)
    with store_lock(store), video_lock(store, "v1") as held:
        assert held
    staging_dir(store, load_policy(store))  # as a crashed writer leaves it
    if everything:
        plot_stats(all_stats(store), store / "plots", load_policy(store))
        export_baseline(store, store / "exports" / "baseline")


def _modes(store: Path) -> dict[Path, int]:
    return {p: stat.S_IMODE(p.lstat().st_mode) for p in store.rglob("*")}


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_every_path_follows_the_group_policy_whatever_the_umask(
        sample_release: Path, tmp_path: Path, mask: int) -> None:
    store = tmp_path / "store"
    with umask(mask):
        _make_store(sample_release, store)
    modes = _modes(store)
    kinds = {p.suffix or p.name for p in modes if p.is_file()}
    assert {".parquet", ".json", ".png", ".npy", ".lock", "0", ".txt"} <= kinds, kinds
    assert any(".staging" in p.parts for p in modes) and any(
        "features.zarr" in p.parts for p in modes)
    wrong = {str(p.relative_to(store)): oct(m) for p, m in modes.items()
             if m != (0o2770 if p.is_dir() else 0o660)}
    assert not wrong
    assert stat.S_IMODE(store.stat().st_mode) == 0o2770  # made by bahfs: the policy's
    assert not drifting(store)
    assert not [p for p in verify_store(store) if "access" in p.what]


def test_verify_names_a_chunk_made_world_readable_and_fix_repairs_it(
        sample_release: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    with umask(0o022):
        _make_store(sample_release, store, everything=False)
    chunk = next(p for p in (store / "features.zarr").rglob("c/0") if p.is_file())
    chunk.chmod(0o644)
    (store / "tables").chmod(0o755)
    result = runner.invoke(app, ["verify", str(store)])
    assert result.exit_code == 1
    assert str(chunk.relative_to(store)) in result.output
    assert "-rw-r--r--" in result.output and "tables" in result.output
    result = runner.invoke(app, ["verify", "--fix", str(store)])
    assert "2 paths given the store's access policy" in result.output
    assert stat.S_IMODE(chunk.stat().st_mode) == 0o660
    assert not drifting(store)


def test_owner_only_store(sample_release: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    result = runner.invoke(app, ["access", str(store), "--scope", "owner"])  # at creation
    assert result.exit_code == 0, result.output
    with umask(0o022):
        _make_store(sample_release, store, everything=False)
    assert (store / ACCESS_FILE).is_file()
    wrong = {str(p.relative_to(store)): oct(m) for p, m in _modes(store).items()
             if m != (0o700 if p.is_dir() else 0o600)}
    assert not wrong
    assert not drifting(store)
    fixed, failed = save_policy(store, make_policy("group"))  # switched back: applied
    assert store in fixed and not failed
    assert all(m == (0o2770 if p.is_dir() else 0o660)
               for p, m in [*_modes(store).items(), (store, stat.S_IMODE(store.stat().st_mode))])


def test_a_named_group_is_given_to_every_path(sample_release: Path, tmp_path: Path) -> None:
    mine = set(os.getgroups()) | {os.getegid()}
    others = [g for g in grp.getgrall() if g.gr_gid != os.getegid()
              and (os.geteuid() == 0 or g.gr_gid in mine)]
    if not others:
        pytest.skip("needs a second group this user may give files to")
    group = others[0]
    store = tmp_path / "store"
    save_policy(store, make_policy("group", group.gr_name))
    with umask(0o077):
        _make_store(sample_release, store, everything=False)
    assert {p.lstat().st_gid for p in store.rglob("*")} == {group.gr_gid}
    os.chown(store / "tables" / "videos.parquet", -1, os.getegid())
    assert [p.name for p, _ in drifting(store)] == ["videos.parquet"]
    fixed, failed = fix_drift(store)
    assert len(fixed) == 1 and not failed


def test_a_bad_policy_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["access", str(tmp_path / "s"), "--scope", "world"])
    assert result.exit_code == 2 and "access scope 'world'" in result.output
    result = runner.invoke(app, ["access", str(tmp_path / "s"), "--group", "no-such-grp"])
    assert result.exit_code == 2 and "does not exist" in result.output
