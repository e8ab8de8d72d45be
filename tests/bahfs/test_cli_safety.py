"""Commands that change things touch only what is theirs: purge refuses ids and paths
that are not the store's, verify writes nothing, --fix touches only what bahfs wrote,
and a re-delivery that takes consent back leaves a store verify accepts."""

from __future__ import annotations

import stat
from pathlib import Path

from typer.testing import CliRunner

from bahfs.cli import app
from store.tables import read_table, read_table_or_empty

runner = CliRunner()


def _files(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under ``root`` with its mtime, size and mode: what a write changes."""
    return {str(p.relative_to(root)): (p.lstat().st_mtime_ns, p.lstat().st_size,
                                       p.lstat().st_mode) for p in root.rglob("*")}


def test_purge_refuses_a_video_id_an_unknown_id_and_a_path_that_is_not_a_store(
        small_store: Path, tmp_path: Path) -> None:
    before = _files(small_store)
    video = runner.invoke(app, ["purge", str(small_store), "--participant",
                                "S0000__Visite_1__Q1"])
    assert video.exit_code == 2, video.output
    assert "'S0000__Visite_1__Q1' is a video id, of participant S0000" in video.output
    unknown = runner.invoke(app, ["purge", str(small_store), "--participant", "99999"])
    assert unknown.exit_code == 2, unknown.output
    assert "participant 99999 is not in this store; nothing recorded" in unknown.output
    assert "--not-arrived-yet" in unknown.output
    assert _files(small_store) == before  # nothing recorded, nothing removed
    for path in (tmp_path / "missing", tmp_path):  # nothing there; a folder not a store
        result = runner.invoke(app, ["purge", str(path), "--participant", "S0001"])
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert "no such directory" in runner.invoke(
        app, ["purge", str(tmp_path / "missing"), "--participant", "1"]).output
    assert not (tmp_path / "missing").exists()
    assert not (tmp_path / "tables").exists() and not (tmp_path / ".locks").exists()
    # an empty folder (a first ingest still reading its batch) takes a withdrawal only
    # for data that has not arrived; a missing folder never does
    empty = tmp_path / "first-ingest"
    empty.mkdir()
    assert runner.invoke(app, ["purge", str(empty), "--participant", "82553"]).exit_code == 2
    assert not any(empty.iterdir())
    early = runner.invoke(app, ["purge", str(empty), "--participant", "82553",
                                "--not-arrived-yet"])
    assert early.exit_code == 0, early.output
    assert read_table(empty, "withdrawals").height == 1
    missing = runner.invoke(app, ["purge", str(tmp_path / "missing"), "--participant",
                                  "82553", "--not-arrived-yet"])
    assert missing.exit_code == 2 and not (tmp_path / "missing").exists()

    later = runner.invoke(app, ["purge", str(small_store), "--participant", "99999",
                                "--not-arrived-yet"])
    assert later.exit_code == 0, later.output
    assert read_table(small_store, "withdrawals").height == 1
    known = runner.invoke(app, ["purge", str(small_store), "--participant", "S0001"])
    assert known.exit_code == 0, known.output
    assert "S0001" not in read_table(small_store, "videos")["participant_id"].to_list()
    assert read_table(small_store, "withdrawals").height == 2


def _release_folder(root: Path) -> Path:
    """The top of a BAH release as it ships, files with the modes a copy gives them."""
    video = root / "Videos" / "82553" / "Visite_1" / "82553_Question_1_Video.mp4"
    video.parent.mkdir(parents=True)
    video.write_bytes(b"not decoded here")
    (root / "meta_data.yml").write_text("'82553': {}\n")
    for p in (video, root / "meta_data.yml"):
        p.chmod(0o644)
    return root


def test_verify_writes_nothing_and_refuses_a_release_folder(small_store: Path,
                                                            tmp_path: Path) -> None:
    before = _files(small_store)
    result = runner.invoke(app, ["verify", str(small_store)])
    assert result.exit_code == 0 and "store is valid" in result.output, result.output
    assert _files(small_store) == before  # the catalog tables are not rewritten

    release = _release_folder(tmp_path / "release")
    was = _files(release)
    for args in (["verify", str(release)], ["verify", "--fix", str(release)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert f"{release} is a BAH release, not a store" in result.output
    assert _files(release) == was  # no chmod, no tables/

    missing = runner.invoke(app, ["verify", str(tmp_path / "nope")])
    assert missing.exit_code == 2
    assert missing.output.strip().splitlines() == [
        f"error: no such directory: {tmp_path / 'nope'} | expected: a store made by "
        "`bahfs ingest DATASET STORE`"]


def test_fix_repairs_what_bahfs_wrote_and_leaves_the_rest(small_store: Path) -> None:
    table = small_store / "tables" / "videos.parquet"
    table.chmod(0o644)
    notes = small_store / "my-notes.txt"  # the user's own, beside the store's folders
    notes.write_text("mine")
    notes.chmod(0o644)
    result = runner.invoke(app, ["verify", str(small_store)])
    assert result.exit_code == 1 and "tables/videos.parquet" in result.output
    assert "my-notes.txt" not in result.output
    result = runner.invoke(app, ["verify", "--fix", str(small_store)])
    assert result.exit_code == 0, result.output
    assert "access: 1 paths given the store's access policy" in result.output
    assert stat.S_IMODE(table.stat().st_mode) == 0o660
    assert stat.S_IMODE(notes.stat().st_mode) == 0o644


def test_a_redelivery_that_takes_consent_back_leaves_a_valid_store(
        mutable_release: Path, tmp_path: Path) -> None:
    """docs/operations.md: a re-delivered batch where a participant declines purges
    them; verify then accepts the exclusion the batch records for them."""
    store = tmp_path / "store"
    first = runner.invoke(app, ["ingest", str(mutable_release), str(store), "--merge"])
    assert first.exit_code == 0, first.output
    pid = read_table(store, "participants")["participant_id"][0]
    meta = mutable_release / "meta_data.yml"
    text = meta.read_text()
    head, _, tail = text.partition(f"'{pid}':\n")
    entry, sep, rest = tail.partition("\n'")
    assert "Use in publications: 'Yes'" in entry
    meta.write_text(head + f"'{pid}':\n" + entry.replace("Use in publications: 'Yes'",
                                                         "Use in publications: 'No'")
                    + sep + rest)
    again = runner.invoke(app, ["ingest", str(mutable_release), str(store), "--merge"])
    assert again.exit_code == 0, again.output
    assert f"excluded {pid}: declined use in publications" in again.output
    assert pid not in read_table(store, "videos")["participant_id"].to_list()
    assert read_table_or_empty(store, "withdrawals").height == 1
    result = runner.invoke(app, ["verify", str(store)])
    assert result.exit_code == 0, result.output


def test_access_makes_a_store_only_where_one_is_meant(tmp_path: Path) -> None:
    release = _release_folder(tmp_path / "release")
    was = _files(release)
    for args in (["access", str(release)], ["access", str(release), "--scope", "owner"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and "is a BAH release, not a store" in result.output
    assert _files(release) == was
    shown = runner.invoke(app, ["access", str(tmp_path / "none")])
    assert shown.exit_code == 2 and "no such directory" in shown.output
    assert not (tmp_path / "none").exists()
    made = runner.invoke(app, ["access", str(tmp_path / "new"), "--scope", "owner"])
    assert made.exit_code == 0 and (tmp_path / "new" / "access.json").is_file()
