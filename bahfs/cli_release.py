"""``bahfs check-release``: the plan before ``bahfs ingest`` applies it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bahfs.cli import _print_table, app, csv_names


@app.command("check-release")
def check_release_cmd(
    dataset: Annotated[Path, typer.Argument(help="BAH release directory (any variant).")],
    require_consent: Annotated[str, typer.Option(
        help="Consents a participant must have given, comma separated: "
             "challenges,publications.")] = "challenges,publications",
    show: Annotated[int, typer.Option(help="List at most this many files per kind.")] = 20,
) -> None:
    """Read a whole release and write nothing: the variant found, counts per split next
    to the paper's, consent exclusions, files without annotations and annotations
    without files, and every problem, one line each. Exits 0 when ingest would
    succeed, 1 otherwise."""
    import polars as pl

    from bahfs.release.check import check_release
    from store.ingest import ConsentPolicy, consent_exclusions

    policy = ConsentPolicy(require=tuple(csv_names(require_consent)))
    found = check_release(dataset)
    rel = found.release
    if rel is not None:
        typer.secho(f"variant: {rel.layout.variant}", bold=True)
        for line in (*rel.layout.describe(), *rel.id_styles):
            typer.echo(f"  {line}")
        counts = found.counts.pivot("split", index="measure", values=["found", "paper"])
        _print_table("counts (found / paper; paper figures: Table 2 and the release's "
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
        raise typer.Exit(1)
    typer.secho("ingest would succeed", fg=typer.colors.GREEN)
