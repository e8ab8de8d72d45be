"""``bahfs stats``: the dataset tables and cue statistics of a store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bahfs.cli.common import RESEARCH, StoreArg, app, friendly, print_table


@app.command(rich_help_panel=RESEARCH, epilog="Example: bahfs stats /data/bah/store")
@friendly
def stats(
    store: StoreArg,
    plots: Annotated[Path | None, typer.Option(help="Where to write PNG plots "
                                                    "(default STORE/plots).")] = None,
) -> None:
    """Print the dataset tables and cue statistics; write PNG plots.

    The paper's dataset tables per split, cue frequency per modality, modality
    co-occurrence, inconsistency codes, A/H per question and demographic group.
    """
    from store.access import load_policy
    from store.plots import plot_stats
    from store.stats import all_stats
    from store.tables import read_manifest

    manifest = read_manifest(store)
    results = all_stats(store)
    for name, df in results.items():
        print_table(name.replace("_", " "), df)
    excluded = manifest.get("excluded", {})
    typer.echo(f"\n{len(excluded)} participants excluded for consent: "
               + ", ".join(f"{k} ({v})" for k, v in excluded.items()))
    written = plot_stats(results, plots or Path(store) / "plots", load_policy(store))
    typer.echo("plots: " + ", ".join(str(p) for p in written))
