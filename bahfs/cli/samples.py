"""``bahfs sample-data``: a sample dataset in the BAH release layout."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from bahfs.cli.common import START, app, friendly


@app.command("sample-data", rich_help_panel=START,
             epilog="Example: bahfs sample-data /tmp/bah-sample --participants 4 --seed 1")
@friendly
def sample_data(
    out: Annotated[Path, typer.Argument(show_default=False, metavar="OUT",
                                        help="Directory to write the dataset into.")],
    participants: Annotated[int, typer.Option(help="Number of participants.")] = 6,
    first_participant: Annotated[int, typer.Option(
        help="Number of the first participant (1 is id 82553); use distinct ranges "
             "for separate inbox batches.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same annotations.")] = 0,
    max_questions: Annotated[int, typer.Option(help="Questions answered (1-7).")] = 7,
    max_seconds: Annotated[float, typer.Option(help="Longest video, seconds (>= 14).")] = 30.0,
    workers: Annotated[int, typer.Option(help="Parallel render processes.")] = 2,
    variant: Annotated[str, typer.Option(
        help="Layout: release (the BAH release as it ships), official (the official "
             "code's video_annotation.yaml and dataset-splits/), challenge-2025 (four-key "
             "annotation.yml, ids without Videos/).")] = "release",
) -> None:
    """Generate a sample dataset in the BAH release layout (real H.264/AAC videos).

    Same seed, same annotation bytes; some participants decline consent.
    """
    from pydantic import ValidationError

    from bahfs.sample.generate import SampleConfig, generate
    from bahfs.sample.release_files import VARIANTS
    from store.errors import ConfigError

    try:
        cfg = SampleConfig(participants=participants, first_participant=first_participant,
                           seed=seed, max_questions=max_questions, max_seconds=max_seconds,
                           workers=workers, variant=variant)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        field = "--" + "-".join(str(p) for p in err["loc"]).replace("_", "-")
        raise ConfigError(f"bad option {field}: {str(err['msg']).removeprefix('Value error, ')}",
                          expected=f"variant one of {list(VARIANTS)}" if field == "--variant"
                          else "see `bahfs sample-data --help`") from exc
    t0 = time.perf_counter()
    summary = generate(out, cfg)
    summary["wall_s"] = round(time.perf_counter() - t0, 1)
    typer.echo(json.dumps(summary, indent=2))
