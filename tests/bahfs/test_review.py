"""``bahfs review``: a video's page and a site's index, read back and checked against
the store (the browser part is in test_review_browser.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from bahfs.cli import app
from bahfs.review.data import bin_mean
from store.reader import FeatureReader
from store.tables import read_table

runner = CliRunner()


def figure_of(page: str) -> dict[str, Any]:
    """The plotly figure embedded in a page."""
    found = re.search(r"const FIG = (\{.*?\});\nconst DATA", page, re.S)
    assert found, "no figure in the page"
    fig: dict[str, Any] = json.loads(found.group(1).replace("<\\/", "</"))
    return fig


def _extracted(store: Path) -> list[str]:
    reader = FeatureReader(store)
    return reader.extracted(reader.resolve("logmel"))


def test_a_video_page_stands_alone_and_shows_the_store(review_store: Path,
                                                       tmp_path: Path) -> None:
    segs = read_table(review_store, "segments")
    vid = max(_extracted(review_store), key=lambda v: (segs["video_id"] == v).sum())
    out = tmp_path / "page.html"
    result = runner.invoke(app, ["review", str(review_store), vid, "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "plotly.js v" in page  # the bundle inline, not fetched
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=\"?https?:", page)
    fig = figure_of(page)
    traces = {t.get("name"): t for t in fig["data"]}
    reader = FeatureReader(review_store)
    fs = reader.resolve("logmel")
    data = reader.video(fs, vid, ["timestamps", "energy_db", "voiced"])
    n = data["timestamps"].size
    video = read_table(review_store, "videos").filter(pl.col("video_id") == vid).row(
        0, named=True)
    step = round(video["fps"] / 8)
    # the tracks are the stored arrays, downsampled by bin means
    np.testing.assert_allclose(traces["energy_db"]["y"],
                               bin_mean(data["energy_db"], step), atol=0.006)
    np.testing.assert_allclose(traces["voiced"]["y"], bin_mean(data["voiced"], step),
                               atol=6e-4)
    assert len(traces["voiced"]["x"]) == -(-n // step)
    # the frame labels as steps: the value at each frame is the store's label
    lab = reader.labels(vid)
    fl = traces["frame label"]
    at = np.searchsorted(fl["x"], np.round(data["timestamps"], 3), side="right") - 1
    assert np.array_equal(np.asarray(fl["y"])[at], lab)
    # segments and transcript chunks, one filled box each
    segs = segs.filter(pl.col("video_id") == vid)
    assert segs.height > 0
    boxes = [t for t in fig["data"] if str(t.get("name", "")).startswith("A/H segment")]
    assert len(boxes) == segs.height
    for box, (s, e) in zip(boxes, segs.sort("start_s").select("start_s", "end_s").iter_rows(),
                           strict=True):
        assert min(box["x"]) == pytest.approx(s) and max(box["x"]) == pytest.approx(e)
    chunks = read_table(review_store, "transcripts").filter(pl.col("video_id") == vid)
    assert sum(t.get("name") == "release transcript" for t in fig["data"]) == chunks.height
    # a thumbnail for every 12th frame (2 a second at 24 fps), decoded from the video
    images = fig["layout"]["images"]
    assert len(images) == len(range(0, n, round(video["fps"] / 2)))
    assert all(im["source"].startswith("data:image/jpeg;base64,") for im in images)
    assert "addEventListener('mousemove'" in page and "addEventListener('click'" in page


def test_the_site_indexes_every_extracted_video_and_the_quarantine(review_store: Path,
                                                                    tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = runner.invoke(app, ["review", str(review_store), "--out", str(site)])
    assert result.exit_code == 0, result.output
    assert f"{site / 'index.html'}:" in result.output and "MB in all" in result.output
    index = (site / "index.html").read_text(encoding="utf-8")
    extracted = _extracted(review_store)
    rows = re.findall(r'<tr data-split="[^"]*">(.*?)</tr>', index)
    assert len(rows) == len(extracted) == 2
    for vid in extracted:
        assert f'href="videos/{vid}.html"' in index
        page = (site / "videos" / f"{vid}.html").read_text(encoding="utf-8")
        assert '<script src="../plotly.min.js"></script>' in page
        assert "plotly.js v" not in page  # one shared copy of the bundle
    assert (site / "plotly.min.js").stat().st_size > 1_000_000
    # A/H fraction: the store's frame labels
    fl = read_table(review_store, "frame_labels")
    for vid in extracted:
        frac = fl.filter(pl.col("video_id") == vid)["label"].mean()
        row = next(r for r in rows if f"{vid}.html" in r)
        cells = re.findall(r'data-v="([^"]*)"', row)
        assert float(cells[5]) == pytest.approx(frac, abs=1e-3)
    # both quarantined videos, with their stage and reason
    q = read_table(review_store, "quarantine")
    assert sorted(q["stage"].to_list()) == ["extract", "ingest"]
    section = index.split("<h2>Quarantined (2)</h2>", 1)[1]
    for vid, stage, reason in q.select("video_id", "stage", "reason").iter_rows():
        assert vid in section and f"<td>{stage}</td>" in section
        assert reason.split(":")[0] in section
    # a second run replaces the pages, and drops those of videos no longer extracted
    (site / "videos" / "gone.html").write_text("old")
    assert runner.invoke(app, ["review", str(review_store), "--out", str(site)]).exit_code == 0
    assert not (site / "videos" / "gone.html").exists()


@pytest.mark.slow
def test_a_run_shows_its_probabilities_and_the_official_score(review_store: Path,
                                                             tmp_path: Path) -> None:
    from training.predict import video_probabilities
    from training.run import TrainConfig, load_run, train

    run = train(TrainConfig(store=review_store, model="mlp", modalities=("logmel",),
                            epochs=1, window=48, hop=24, out=tmp_path / "runs"),
                log=lambda *_: None)
    site = tmp_path / "site"
    result = runner.invoke(app, ["review", str(review_store), "--out", str(site), "--run",
                                 str(run)])
    assert result.exit_code == 0, result.output
    model, cfg, sources = load_run(run)
    expected = video_probabilities(model, review_store, sources, cfg.window,
                                   video_ids=_extracted(review_store))
    index = (site / "index.html").read_text(encoding="utf-8")
    for vid, p in expected.items():
        row = next(r for r in index.split("<tr ") if f"{vid}.html" in r)
        assert float(re.findall(r'data-v="([^"]*)"', row)[-1]) == pytest.approx(p, abs=6e-4)
        fig = figure_of((site / "videos" / f"{vid}.html").read_text(encoding="utf-8"))
        names = [t.get("name", "") for t in fig["data"]]
        assert "run: P(A/H)" in names
        assert f"video score {p:.3f} (best 24-frame mean)" in names


def test_errors_name_the_video(review_store: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["review", str(review_store), "no_such_video", "--out",
                                 str(tmp_path / "p.html")])
    assert result.exit_code == 2
    assert "'no_such_video' is not in the videos table" in result.output
    q = read_table(review_store, "quarantine").filter(pl.col("stage") == "ingest")
    result = runner.invoke(app, ["review", str(review_store), q["video_id"][0], "--out",
                                 str(tmp_path / "p.html")])
    assert result.exit_code == 2 and "was quarantined at ingest" in result.output
    vid = _extracted(review_store)[0]
    result = runner.invoke(app, ["review", str(review_store), vid, "--out",
                                 str(tmp_path / "p.html"), "--thumbs", "crops"])
    assert result.exit_code == 2 and "no face_crop feature set" in result.output


def test_crops_and_any_per_frame_scalar(tmp_path: Path) -> None:
    """Without the video file the strip shows the stored face crops; a feature set the
    review code has never heard of (behaviour-style scalars, a named vector) is drawn
    from its declared arrays."""
    import base64
    import io

    from PIL import Image

    from bahfs.review.site import ReviewOptions, review_video
    from benchmarks.synthetic import SyntheticConfig, make_synthetic_store
    from store.features import ArraySpec, FeatureSetSpec, VideoFeatures
    from store.writer import FeatureWriter

    store = tmp_path / "store"
    make_synthetic_store(store, SyntheticConfig(participants=1, videos_per_participant=1,
                                                mean_frames=100, dims=(("face", 4),)))
    vid, pid, n = read_table(store, "videos").select("video_id", "participant_id",
                                                     "n_frames").row(0)
    ts = np.arange(n) / 24.0
    shade = (np.arange(n) * 2 % 256).astype(np.uint8)  # each frame's crop: one grey
    crops = np.broadcast_to(shade[:, None, None, None], (n, 32, 32, 3)).copy()
    writer = FeatureWriter(store)
    writer.write(VideoFeatures(
        FeatureSetSpec("face_crop", {}, "0" * 64, (
            ArraySpec("crop", "uint8", (32, 32, 3)), ArraySpec("has_face", "bool"))),
        vid, pid, ts, {"crop": crops, "has_face": np.arange(n) % 3 > 0}))
    yaw = np.linspace(-40, 40, n).astype(np.float32)
    writer.write(VideoFeatures(
        FeatureSetSpec("cues_mesh", {}, "1" * 64, (
            ArraySpec("blink", "float32", (), "eyes closed"),
            ArraySpec("head_yaw", "float32", (), "degrees"),
            ArraySpec("gaze", "float32", (2,), "horizontal, vertical"),
            ArraySpec("mesh", "float32", (6,), "landmarks"))),
        vid, pid, ts, {"blink": (np.arange(n) % 10 == 0).astype(np.float32),
                       "head_yaw": yaw, "gaze": np.zeros((n, 2), np.float32),
                       "mesh": np.zeros((n, 6), np.float32)}))
    page = review_video(store, vid, tmp_path / "p.html", ReviewOptions()).read_text()
    fig = figure_of(page)
    names = {t.get("name") for t in fig["data"]}
    assert {"blink", "head_yaw", "horizontal", "vertical", "has_face"} <= names
    assert "mesh" not in names and "embedding" not in names
    titles = {a["text"] for a in fig["layout"]["annotations"]}
    assert {"<b>cues_mesh</b>", "<b>cues_mesh · head_yaw</b>", "<b>cues_mesh · gaze</b>",
            "<b>frames: face crops</b>"} <= titles
    yaw_trace = next(t for t in fig["data"] if t.get("name") == "head_yaw")
    np.testing.assert_allclose(yaw_trace["y"], bin_mean(yaw, 3), atol=0.006)
    images = fig["layout"]["images"]
    assert len(images) == len(range(0, n, 12))
    for k, im in enumerate(images):
        png = base64.b64decode(im["source"].split(",", 1)[1])
        grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
        assert abs(grey.mean() - shade[12 * k]) < 3  # the crop of frame 12k
