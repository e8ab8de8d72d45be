"""``bahfs check-release`` (the plan) and ``bahfs ingest`` (the apply): a BAH release
into the store's tables."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from bahfs.cli.common import (
    BRING_IN,
    CHECK_FAILED,
    NewStoreArg,
    app,
    csv_names,
    friendly,
    print_table,
)


@app.command("check-release", rich_help_panel=BRING_IN,
             epilog="Example: bahfs check-release /data/bah/release")
@friendly
def check_release_cmd(
    dataset: Annotated[Path, typer.Argument(show_default=False, metavar="DATASET",
                                            help="BAH release directory (any variant).")],
    require_consent: Annotated[str, typer.Option(
        help="Consents a participant must have given, comma separated: "
             "challenges,publications.")] = "challenges,publications",
    show: Annotated[int, typer.Option(help="List at most this many files per kind.")] = 20,
) -> None:
    """Plan before ingest: read a whole release, write nothing, list every problem.

    Prints the variant found, counts per split next to the paper's, consent
    exclusions, files without annotations and annotations without files, and every
    problem, one line each. Exits 0 when ingest would succeed, 1 otherwise.
    """
    import polars as pl

    from store.consent import ConsentPolicy, consent_exclusions
    from store.release.check import check_release

    policy = ConsentPolicy(require=tuple(csv_names(require_consent)))
    found = check_release(dataset)
    rel = found.release
    if rel is not None:
        typer.secho(f"variant: {rel.layout.variant}", bold=True)
        for line in (*rel.layout.describe(), *rel.id_styles):
            typer.echo(f"  {line}")
        counts = found.counts.pivot("split", index="measure", values=["found", "paper"])
        print_table("counts (found / paper; paper figures: Table 2 and the release's "
                     "split files)", counts)
        excl = consent_exclusions(rel.participants, policy)
        n_videos = rel.videos.filter(pl.col("participant_id").is_in(
            excl["participant_id"].to_list())).height
        typer.echo(f"\nconsent: {excl.height} participants ({n_videos} videos) excluded "
                   f"by the policy {list(policy.require)}")
        for pid, reason in excl.iter_rows():
            typer.echo(f"  {pid}: {reason}")
        for title, files in (("annotated videos without a file (ingest quarantines them)",
                              found.missing_files),
                             ("video files without an annotation (not ingested)",
                              found.unannotated_files)):
            typer.echo(f"\n{title}: {len(files)}")
            for f in files[:show]:
                typer.echo(f"  {f}")
        for note in rel.notes:
            typer.echo(f"note: {note}")
    typer.echo(f"\nproblems: {len(found.problems)}")
    for problem in found.problems:
        typer.secho(f"  {problem}", fg=typer.colors.RED)
    if not found.ok:
        raise typer.Exit(CHECK_FAILED)
    typer.secho("ingest would succeed", fg=typer.colors.GREEN)


@app.command(rich_help_panel=BRING_IN,
             epilog="Example: bahfs ingest /data/bah/release /data/bah/store")
@friendly
def ingest(
    dataset: Annotated[Path, typer.Argument(
        metavar="DATASET",
        show_default=False, help="BAH release directory (real or generated); with "
                                 "--merge, a batch or an inbox of batches.")],
    store: NewStoreArg,
    require_consent: Annotated[str, typer.Option(
        help="Consents a participant must have given, comma separated: "
             "challenges,publications.")] = "challenges,publications",
    merge: Annotated[bool, typer.Option(
        help="Merge DATASET (a batch, or an inbox of batches) into the tables instead of "
             "replacing them; unchanged batches are skipped.")] = False,
) -> None:
    """Read a release into the store's tables (consent applied, videos probed).

    Without --merge the release replaces the tables; with it, new or changed batches
    are merged in, as the Prefect flows do.
    """
    from flows.batches import find_batches, ingest_batch, pending_batches
    from store.consent import ConsentPolicy
    from store.errors import DatasetLayoutError, StoreError
    from store.ingest import ingest as run_ingest
    from store.local import as_store

    policy = ConsentPolicy(require=tuple(csv_names(require_consent)))
    store = as_store(store)  # a folder, or the bucket's store opened by the argument
    t0 = time.perf_counter()
    bad: dict[str, str] = {}
    if merge:
        reports = []
        for b in pending_batches(store, find_batches(dataset)):
            try:
                reports.append((b.name, ingest_batch(b, store, policy)))
            except DatasetLayoutError as exc:  # reported and skipped; the others land
                bad[b.name] = str(exc)
        if not reports and not bad:
            typer.echo(f"nothing new under {dataset}")
    elif store.read_table_or_empty("batches").height:
        raise StoreError("this store holds merged batches; replacing its tables with one "
                         "release would drop them", path=store.location,
                         expected="`bahfs ingest --merge`, or a new store")
    else:
        reports = [(str(dataset), run_ingest(dataset, store, policy))]
    for name, report in reports:
        typer.echo(f"ingested {report.participants} participants, {report.videos} videos, "
                   f"{report.frames} frames, {report.segments} A/H segments from {name} "
                   f"into {store.location} in {time.perf_counter() - t0:.1f} s")
        for note in report.notes:
            typer.echo(f"  {note}")
        for pid, reason in report.excluded.items():
            typer.echo(f"  excluded {pid}: {reason}")
        for vid, reason in report.quarantined.items():
            typer.secho(f"  quarantined {vid}: {reason}", fg=typer.colors.YELLOW)
    for name, why in bad.items():
        typer.secho(f"batch {name} not ingested: {why}", fg=typer.colors.RED, err=True)
    if bad:
        raise typer.Exit(CHECK_FAILED)
