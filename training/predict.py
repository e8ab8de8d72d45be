"""Video-level predictions of a trained run, in the A/H challenge's submission format.

One line per video, ``<video id>,<p0>,<p1>,<pred>``: the video id exactly as the
release spells it (``release_id``), the two class probabilities and the hard
prediction (the argmax, ties to class 0). The challenge's validator parses the
text and checks ``p0 + p1 == 1`` exactly in floating point, which a plain
``1 - p`` printed with a few decimals does not always satisfy:
:func:`probability_pair` picks the texts so that it does. With the organisers'
``video.csv`` the lines follow its row order and keep its spelling of each id.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import torch

from store.backend import Store
from store.errors import ConfigError, NotFoundError
from store.local import as_store
from store.reader import FeatureReader
from store.release.ids import VIDEO_EXTENSIONS, parse_video_ref
from training.data import Source, WindowDataset
from training.device import device_errors, model_device
from training.metrics import video_probability

DECIMALS = 6


def probability_pair(p1: float, decimals: int = DECIMALS) -> tuple[str, str]:
    """``(p0, p1)`` as texts with ``float(p0) + float(p1) == 1.0`` exactly.

    ``p1`` is rounded to ``decimals`` places and clipped to [0, 1]; ``p0`` is its exact
    decimal complement, so the two texts add up to 1 as decimals, and (checked here,
    and in the tests for every six-decimal value) their parsed floats add up to
    exactly 1.0. Printing ``1 - p`` and ``p`` separately does not: at half-way values
    both round up and the validator sees 1.000001.
    """
    if not np.isfinite(p1):
        raise ConfigError(f"probability {p1!r} is not finite", expected="a number in [0, 1]")
    step = Decimal(1).scaleb(-decimals)
    q = min(max(Decimal(repr(float(p1))).quantize(step), Decimal(0)), Decimal(1))
    t1, t0 = f"{q:.{decimals}f}", f"{Decimal(1) - q:.{decimals}f}"
    if float(t0) + float(t1) != 1.0:
        raise ConfigError(f"probabilities {t0} and {t1} do not add up to 1 as floats",
                          expected="fewer decimals")
    return t0, t1


def submission_line(video_id: str, p1: float, decimals: int = DECIMALS) -> str:
    t0, t1 = probability_pair(p1, decimals)
    return f"{video_id},{t0},{t1},{int(float(t1) > float(t0))}"


def read_video_csv(path: Path) -> list[str]:
    """The video ids of the organisers' ``video.csv``, in its order (first column; a
    first row that names no video is its header)."""
    ids = []
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines()):
        first = line.split(",", 1)[0].strip()
        if not first:
            continue
        if i == 0 and not first.lower().endswith(tuple(f".{e}" for e in VIDEO_EXTENSIONS)):
            continue  # the header
        ids.append(first)
    if not ids:
        raise ConfigError("no video ids", path=path, expected="<video id>[,...] per line")
    return ids


def store_ids(store: Store | Path, wanted: list[str], *, path: Path) -> list[str]:
    """Store video ids of ``wanted`` (release ids, in any spelling), in order."""
    videos = as_store(store).read_table("videos").select("release_id", "video_id")
    by_release = dict(videos.iter_rows())
    known = set(videos["video_id"].to_list())
    out: list[str] = []
    missing: list[str] = []
    for ref in wanted:
        vid = by_release.get(ref) or parse_video_ref(ref, path=path).video_id
        (out if vid in known else missing).append(vid)
    if missing:
        raise NotFoundError(f"{len(missing)} videos of the list are not in the store, e.g. "
                            f"{missing[0]!r}", path=path,
                            expected="every listed video ingested and extracted")
    return out


def require_extracted(store: Store | Path, sources: list[Source], video_ids: list[str],
                      where: str) -> None:
    """A submission covers every video asked for: raise naming those not extracted."""
    reader = FeatureReader(store)
    have = set.intersection(*(set(reader.extracted(s.feature_set)) for s in sources))
    missing = [v for v in video_ids if v not in have]
    if missing:
        raise NotFoundError(
            f"{len(missing)} videos of {where} are not extracted into every feature set the "
            f"run uses, e.g. {missing[:3]}", video=missing[0],
            expected=f"`bahfs extract` for {sorted(s.feature_set for s in sources)}")


@torch.no_grad()
def video_probabilities(model: torch.nn.Module, store: Store | Path, sources: list[Source],
                        window: int, video_ids: list[str] | None = None,
                        split: str | None = None) -> dict[str, float]:
    """Positive-class probability per video: frame probabilities from windows (computed
    where the model is), then the official rule (the best 24-frame window's mean)."""
    from training.run import predict_frames

    ds = WindowDataset(store, sources, length=window, hop=window, split=split,
                       video_ids=video_ids, labelled=False, cache_bytes=0)  # read once
    logits = predict_frames(model, ds, [s.modality for s in sources])
    return {v: video_probability(torch.softmax(torch.from_numpy(lg), 1)[:, 1].numpy())
            for v, lg in logits.items()}


def write_submission(out: Path, rows: list[tuple[str, float]]) -> Path:
    """Write ``<video id>,<p0>,<p1>,<pred>`` lines (no header)."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("".join(submission_line(v, p) + "\n" for v, p in rows),
                         encoding="utf-8")
    return Path(out)


def release_order(store: Store | Path, probabilities: dict[str, float]) -> list[tuple[str, float]]:
    """``(release id, p1)`` for the predicted videos, in the release's id order."""
    videos = as_store(store).read_table("videos").filter(
        pl.col("video_id").is_in(list(probabilities))).sort("release_id")
    return [(r, probabilities[v]) for r, v in videos.select("release_id", "video_id").iter_rows()]


def predict(run: Path, out: Path, *, split: str = "test", video_csv: Path | None = None,
            store: Path | str | None = None, device: str | None = None
            ) -> list[tuple[str, float]]:
    """Write the submission of ``run`` for ``split`` (or the videos of ``video_csv``, in
    its order and spelling) to ``out``, the model run on ``device`` (default
    ``$BAHFS_DEVICE``, else auto); return the ``(video id, p1)`` rows written."""
    from training.run import load_run, run_store

    model, cfg, sources = load_run(run, store, device)
    with device_errors(model_device(model)):
        rows = _predict(model, run_store(cfg), sources, cfg.window, split, video_csv)
    write_submission(out, rows)
    return rows


def _predict(model: torch.nn.Module, store: Store | Path, sources: list[Source], window: int,
             split: str, video_csv: Path | None) -> list[tuple[str, float]]:
    if video_csv is not None:
        wanted = read_video_csv(video_csv)
        vids = store_ids(store, wanted, path=video_csv)
        require_extracted(store, sources, vids, str(video_csv))
        probs = video_probabilities(model, store, sources, window, video_ids=vids)
        rows = [(ref, probs[v]) for ref, v in zip(wanted, vids, strict=True)]
    else:
        videos = as_store(store).read_table("videos").filter(pl.col("split") == split)
        require_extracted(store, sources, videos["video_id"].to_list(),
                          f"the {split} split")
        probs = video_probabilities(model, store, sources, window, split=split)
        rows = release_order(store, probs)
    return rows
