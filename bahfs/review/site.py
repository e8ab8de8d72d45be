"""Writing review pages: one video's page, or a site of every extracted video with an
index (one row per video, sortable and filterable, quarantined videos listed with
their reasons).

A site is ``index.html``, ``plotly.min.js`` (one copy, shared by every page) and
``videos/<video id>.html``; it is read from disk by a browser, offline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bahfs.review.data import ReviewStore, VideoView, summary
from bahfs.review.index import render_index
from bahfs.review.page import plotly_bundle, write_page
from bahfs.review.thumbs import attach_thumbs
from store.backend import Store

BUNDLE = "plotly.min.js"


@dataclass(frozen=True)
class ReviewOptions:
    """How pages are made: thumbnails (``auto``, ``frames``, ``crops``, ``none``) at
    ``thumbs_per_second``, tracks at ``hz`` values a second, and an optional run."""

    thumbs: str = "auto"
    thumbs_per_second: float = 2.0
    hz: float = 8.0
    run: Path | None = None
    device: str | None = None


@dataclass
class SiteReport:
    """What a site holds: its index, pages, sizes in bytes."""

    root: Path
    index: Path
    pages: dict[str, Path] = field(default_factory=dict)
    quarantined: int = 0
    bundle_bytes: int = 0

    @property
    def page_bytes(self) -> list[int]:
        return [p.stat().st_size for p in self.pages.values()]

    @property
    def total_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())


def _run_scores(rs: ReviewStore, video_ids: list[str], opts: ReviewOptions
                ) -> dict[str, dict[str, Any]]:
    """Per video, the run's frame probabilities and score (empty without a run)."""
    if opts.run is None:
        return {}
    from bahfs.review.runs import run_scores

    return {vid: {"name": Path(opts.run).name, "p": s.p, "score": s.score,
                  "window": s.window}
            for vid, s in run_scores(opts.run, rs.opened, video_ids, opts.device).items()}


def _view(rs: ReviewStore, video_id: str, opts: ReviewOptions,
          run: dict[str, Any] | None) -> VideoView:
    view = rs.view(video_id, opts.hz)
    view.run = run
    attach_thumbs(rs, view, opts.thumbs, opts.thumbs_per_second)
    return view


def review_video(store: Store | Path, video_id: str, out: Path,
                 opts: ReviewOptions | None = None) -> Path:
    """Write the self-contained page of one video (plotly.js inline) to ``out``."""
    opts = opts or ReviewOptions()
    rs = ReviewStore(store)
    run = _run_scores(rs, [video_id], opts).get(video_id)
    return write_page(_view(rs, video_id, opts, run), out, hz=opts.hz)


def review_site(store: Store | Path, out: Path, opts: ReviewOptions | None = None,
                progress: Callable[[str], None] | None = None) -> SiteReport:
    """Write the site of every extracted video of ``store`` under ``out``."""
    opts = opts or ReviewOptions()
    rs = ReviewStore(store)
    out = Path(out)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    bundle = out / BUNDLE
    bundle.write_text(plotly_bundle(), encoding="utf-8")
    report = SiteReport(out, out / "index.html", bundle_bytes=bundle.stat().st_size)
    vids = rs.extracted()
    runs = _run_scores(rs, vids, opts)
    rows: list[dict[str, Any]] = []
    for i, vid in enumerate(vids, 1):
        view = _view(rs, vid, opts, runs.get(vid))
        report.pages[vid] = write_page(view, out / "videos" / f"{vid}.html",
                                       plotly_src=f"../{BUNDLE}",
                                       index_href="../index.html", hz=opts.hz)
        rows.append({**summary(view), "href": f"videos/{vid}.html"})
        if progress:
            progress(f"[{i}/{len(vids)}] {vid}")
    stale = out / "videos"
    for old in stale.glob("*.html"):  # pages of videos no longer in the store
        if old.stem not in report.pages:
            old.unlink()
    quarantined = rs.quarantine.select("video_id", "participant_id", "stage", "reason",
                                       "path").to_dicts()
    report.quarantined = len(quarantined)
    report.index.write_text(render_index(
        rows, quarantined, store=rs.store,
        feature_sets={fs: s.label for fs, s in rs.sets.items()},
        run=Path(opts.run).name if opts.run else None), encoding="utf-8")
    return report


def describe(report: SiteReport) -> str:
    """One paragraph: where the site is and how big it is."""
    sizes = report.page_bytes
    mean = sum(sizes) / len(sizes) if sizes else 0
    return (f"{report.index}: {len(sizes)} video pages, "
            f"{report.quarantined} quarantine rows; {report.total_bytes / 1e6:.2f} MB in all "
            f"(a page {mean / 1e3:.0f} KB on average, at most "
            f"{max(sizes, default=0) / 1e3:.0f} KB; plotly.js {report.bundle_bytes / 1e6:.2f} "
            f"MB once)")
