"""``bahfs review``: a video's page, or a site of every extracted video, in the browser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bahfs.cli.common import RESEARCH, AnyStoreArg, app, friendly


@app.command(rich_help_panel=RESEARCH,
             epilog="Example: bahfs review /data/bah/store --out site/ --run runs/tcn-0001")
@friendly
def review(
    store: AnyStoreArg,
    out: Annotated[Path, typer.Option(
        help="The page (with VIDEO_ID: an .html file) or the site's folder.")],
    video_id: Annotated[str | None, typer.Argument(
        metavar="VIDEO_ID",
        show_default=False, help="A video id: write its page. Without it: the site of "
                                 "every extracted video.")] = None,
    run: Annotated[Path | None, typer.Option(
        help="A run directory of `bahfs train`: its frame probabilities and video "
             "scores.")] = None,
    thumbs: Annotated[str, typer.Option(
        help="The strip of frames: auto (decoded frames when the video file is there, "
             "else stored face crops), frames, crops or none.")] = "auto",
    thumbs_per_second: Annotated[float, typer.Option(min=0.1, max=24.0,
                                                     help="Thumbnails a second.")] = 2.0,
    hz: Annotated[float, typer.Option(min=0.5, max=120.0,
                                      help="Track values a second (bin means).")] = 8.0,
    device: Annotated[str | None, typer.Option(
        help="Where the run's model runs (auto, cpu, cuda, cuda:N).")] = None,
) -> None:
    """Write an offline HTML page of one video, or a site of every extracted video.

    A page: thumbnails, A/H segments with certainty and cues, frame labels,
    transcript and ASR words, every feature set's tracks, a run's probabilities.
    Without VIDEO_ID, a site: an index of every extracted video linking to its page,
    quarantined videos with reasons.
    """
    from bahfs.review.site import ReviewOptions, describe, review_site, review_video

    opts = ReviewOptions(thumbs=thumbs, thumbs_per_second=thumbs_per_second, hz=hz,
                         run=run, device=device)
    if video_id is not None:
        page = review_video(store, video_id, out, opts)
        typer.echo(f"{page} ({page.stat().st_size / 1e6:.2f} MB, plotly.js inline)")
        return
    report = review_site(store, out, opts, progress=typer.echo)
    typer.echo(describe(report))
