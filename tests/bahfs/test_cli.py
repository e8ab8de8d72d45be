"""The bahfs command line: help everywhere, the main path, clear errors."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import typer
from typer.testing import CliRunner

from bahfs.cli import app

if TYPE_CHECKING:
    from flows.local import LocalPrefect

runner = CliRunner()
COMMANDS = [c.name or c.callback.__name__.replace("_", "-")  # type: ignore[union-attr]
            for c in app.registered_commands]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_ingest_then_stats(sample_release: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    result = runner.invoke(app, ["ingest", str(sample_release), str(store)])
    assert result.exit_code == 0, result.output
    assert "excluded 8" in result.output and "declined use in" in result.output
    assert "variant: BAH release" in result.output
    result = runner.invoke(app, ["stats", str(store)])
    assert result.exit_code == 0, result.output
    assert "split summary" in result.output and "cue frequency" in result.output
    assert (store / "plots" / "cue_frequency.png").is_file()


def test_errors_are_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ingest", str(tmp_path / "missing"), str(tmp_path / "s")])
    assert result.exit_code == 2
    assert "dataset directory not found" in result.output
    assert str(tmp_path / "missing") in result.output
    result = runner.invoke(app, ["stats", str(tmp_path / "s")])
    assert result.exit_code == 2 and "bahfs ingest" in result.output


@pytest.mark.slow
def test_sample_data_command(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = runner.invoke(app, ["sample-data", str(out), "--participants", "1",
                                 "--max-questions", "1", "--max-seconds", "14"])
    assert result.exit_code == 0, result.output
    assert len(list((out / "Videos").rglob("*.mp4"))) == 1


def test_purge_verify_export_commands(sample_release: Path, tmp_path: Path) -> None:
    import numpy as np

    from store.features import ArraySpec, FeatureSetSpec, VideoFeatures
    from store.tables import read_table
    from store.writer import FeatureWriter

    store = tmp_path / "store"
    assert runner.invoke(app, ["ingest", str(sample_release), str(store)]
                         ).exit_code == 0
    spec = FeatureSetSpec("audio", {}, "c" * 64, (ArraySpec("logmel", "float32", (4,)),))
    w = FeatureWriter(store)
    videos = read_table(store, "videos").select("video_id", "participant_id", "n_frames")
    for vid, pid, n in videos.iter_rows():
        w.write(VideoFeatures(spec, vid, pid, np.arange(n) / 24.0,
                              {"logmel": np.ones((n, 4), np.float32)}))
    result = runner.invoke(app, ["verify", str(store)])
    assert result.exit_code == 0 and "store is valid" in result.output, result.output
    result = runner.invoke(app, ["export-baseline", str(store), str(tmp_path / "out")])
    assert result.exit_code == 0 and f"exported {videos.height} videos" in result.output
    pid = videos["participant_id"][0]
    result = runner.invoke(app, ["purge", str(store), "--participant", pid])
    assert result.exit_code == 0 and "future ingests will exclude them" in result.output
    assert runner.invoke(app, ["verify", str(store)]).exit_code == 0
    (store / "tables" / "videos.parquet").unlink()
    result = runner.invoke(app, ["verify", str(store)])
    assert result.exit_code == 1 and "tables/videos" in result.output


@pytest.mark.slow
def test_extract_command_runs_the_flow(sample_release: Path, tmp_path: Path,
                                      prefect_server: LocalPrefect) -> None:
    """`bahfs extract` in a fresh process: Prefect's temporary server, a local Dask
    cluster whose workers report to that same server (no server per worker); the rerun
    reports to a running server (``PREFECT_API_URL``)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect")
    # the temporary server's start may take longer than Prefect's 20 s on loaded cores
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = os.environ[
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]
    bahfs = str(Path(sys.executable).with_name("bahfs"))
    store = tmp_path / "store"
    res = subprocess.run([bahfs, "extract", str(sample_release), str(store),
                          "--extractors", "logmel"], env=env, capture_output=True,
                         text=True, timeout=400)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "extracted " in out and "quarantined 0" in out
    assert out.count("Starting temporary server") == 1, out[-3000:]
    from store.tables import read_table

    assert read_table(store, "extracted").height == read_table(store, "videos").height
    again = subprocess.run([bahfs, "extract", str(sample_release), str(store),
                            "--extractors", "logmel"], env={**env, **prefect_server.env},
                           capture_output=True, text=True, timeout=400)
    assert again.returncode == 0 and "extracted 0 videos" in again.stdout
    assert "Starting temporary server" not in again.stdout + again.stderr
    missing = subprocess.run([bahfs, "extract", str(tmp_path / "nope"), str(store)],
                             env=env, capture_output=True, text=True, timeout=400)
    assert missing.returncode == 2 and "inbox folder not found" in missing.stderr


def test_ingest_merge_and_the_guard_against_replacing_batches(sample_release: Path,
                                                              tmp_path: Path) -> None:
    store = tmp_path / "store"
    args = ["ingest", str(sample_release), str(store)]
    first = runner.invoke(app, [*args, "--merge"])
    assert first.exit_code == 0 and f"from {sample_release.name}" in first.output
    again = runner.invoke(app, [*args, "--merge"])
    assert again.exit_code == 0 and "nothing new" in again.output
    replace = runner.invoke(app, args)
    assert replace.exit_code == 2 and "merged batches" in replace.output


def _commands() -> list[tuple[list[str], Any]]:
    """Every command, subcommands of groups included, with the words that call it."""
    root = typer.main.get_command(app)
    out = []

    def walk(words: list[str], cmd: Any) -> None:
        if hasattr(cmd, "commands"):  # a group
            for name, sub in cmd.commands.items():
                walk([*words, name], sub)
        else:
            out.append((words, cmd))

    walk([], root)
    return out


def _flat(text: str) -> str:
    """Text as help shows it, wrapping undone: no box sides, no Markdown escapes or
    code marks."""
    return " ".join(text.replace("│", " ").replace("\\[", "[").replace("`", "").split())


@pytest.mark.parametrize("words,command", _commands(), ids=lambda x: " ".join(x)
                         if isinstance(x, list) else "")
def test_every_option_is_explained_in_full_with_its_default(words: list[str],
                                                            command: Any) -> None:
    """No option's text empty or cut (rich once ate `[default: 5]` as markup), the
    defaults shown, a one-line summary that ends its sentence, an example last."""
    result = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    shown = _flat(result.output)
    ctx = typer.Context(command, info_name=words[-1])
    for param in command.params:
        if param.name == "help" or getattr(param, "hidden", False):
            continue
        help_text = getattr(param, "help", None)
        assert help_text and help_text.strip(), f"{words} {param.name}: no help"
        assert _flat(help_text) in shown, f"{words} {param.name}: help cut or eaten"
        record = param.get_help_record(ctx)
        default = re.search(r"(?<!\\)\[default: ([^;\]]*)", record[1]) if record else None
        if default:
            assert f"[default: {default[1]}]" in shown, f"{words} {param.name}: no default"
    summary = inspect.cleandoc(command.help or "").split("\n\n")[0]
    assert "\n" not in summary and summary.endswith("."), f"{words}: {summary!r}"
    assert (command.epilog or "").startswith("Example: bahfs " + " ".join(words)), words
    assert shown.endswith(_flat(command.epilog or "")), f"{words}: the example is not last"


def test_usage_errors_are_one_line_and_exit_4_and_the_version_is_shown() -> None:
    for args, said in ((["verify"], "Missing argument 'STORE'."),
                       (["status", ".", "--bogus"], "No such option: --bogus")):
        result = runner.invoke(app, args)
        assert result.exit_code == 4, result.output
        assert result.output.strip().splitlines() == [
            f"error: {said} (see `{result.output.split('`')[1]}`)"], result.output
    for bare in ([], ["quarantine"]):  # a group alone: its help, no error line
        shown = runner.invoke(app, bare)
        assert shown.exit_code == 0 and "Usage" in shown.output
        assert "error" not in shown.output
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("bahfs 0.")


def test_input_errors_name_the_problem_without_pydantic_wording(tmp_path: Path) -> None:
    bad = runner.invoke(app, ["check-release", str(tmp_path), "--require-consent",
                              "chalenges"])
    assert bad.exit_code == 2
    assert bad.output.strip() == ("error: bad consent policy: unknown consent ['chalenges'] "
                                  "| expected: consents among ['challenges', 'publications']")
    empty = runner.invoke(app, ["quarantine", "list", str(tmp_path / "nonexistent")])
    assert empty.exit_code == 2 and "no such directory" in empty.output
    assert "0 videos quarantined" not in empty.output


def test_cues_evaluate_defaults_to_a_feature_set_the_store_holds(small_store: Path,
                                                                 tmp_path: Path) -> None:
    from bahfs.cli.cues import default_feature_set
    from store.errors import NotFoundError

    assert default_feature_set(small_store) == "face"
    bare = tmp_path / "bare"
    (bare / "tables").mkdir(parents=True)
    with pytest.raises(NotFoundError, match="--extractors face,behaviour"):
        default_feature_set(bare)


def test_help_groups_the_commands_by_what_people_do() -> None:
    shown = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    panels = {"Start": ["sample-data", "demo", "doctor"],
              "Bring data in": ["check-release", "ingest", "extract", "extract-video", "plan"],
              "Look after the store": ["status", "verify", "access", "purge", "quarantine",
                                       "export-baseline", "copy"],
              "Research": ["stats", "cues", "review", "train", "evaluate", "predict",
                           "personalise", "zeroshot"]}
    starts = [shown.index(f"─ {panel} ─") for panel in panels]
    assert starts == sorted(starts)  # in the order people need them
    bounds = [*starts, len(shown)]
    for (panel, names), start, end in zip(panels.items(), bounds, bounds[1:], strict=False):
        rows = {line.split()[1] for line in shown[start:end].splitlines()[1:]
                if line.startswith("│ ") and line.split()[1][0].isalpha()}
        assert set(names) <= rows, (panel, rows)
    assert len({line.split()[1] for line in shown.splitlines() if line.startswith("│ ")
                and line.split()[1][0].isalpha()}) == sum(map(len, panels.values()))


def test_ingest_writes_only_into_a_store_or_a_new_folder(tmp_path: Path) -> None:
    checkout = tmp_path / "store"  # e.g. the checkout's `store/` package
    checkout.mkdir()
    (checkout / "__init__.py").write_text("")
    result = runner.invoke(app, ["ingest", str(tmp_path / "release"), str(checkout)])
    assert result.exit_code == 2 and "is not a bahfs store" in result.output
    assert sorted(p.name for p in checkout.iterdir()) == ["__init__.py"]
