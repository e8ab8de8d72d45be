"""``bahfs stats``: the dataset tables and cue statistics of a store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bahfs.cli.common import RESEARCH, AnyStoreArg, app, friendly, local_out, print_table


@app.command(rich_help_panel=RESEARCH, epilog="Example: bahfs stats /data/bah/store")
@friendly
def stats(
    store: AnyStoreArg,
    plots: Annotated[Path | None, typer.Option(help="Where to write PNG plots "
                                                    "(default STORE/plots; a store in a "
                                                    "bucket needs it).")] = None,
) -> None:
    """Print the dataset tables and cue statistics; write PNG plots.

    The paper's dataset tables per split, cue frequency per modality, modality
    co-occurrence, inconsistency codes, A/H per question and demographic group.
    """
    from store.local import as_store
    from store.plots import plot_stats
    from store.stats import all_stats

    folder = local_out(store, plots, "plots", "--plots")
    st = as_store(store)
    manifest = st.read_manifest()
    results = all_stats(st)
    for name, df in results.items():
        print_table(name.replace("_", " "), df)
    excluded = manifest.get("excluded", {})
    typer.echo(f"\n{len(excluded)} participants excluded for consent: "
               + ", ".join(f"{k} ({v})" for k, v in excluded.items()))
    written = plot_stats(results, folder, st.access)
    typer.echo("plots: " + ", ".join(str(p) for p in written))
