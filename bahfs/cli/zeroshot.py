"""``bahfs zeroshot export`` and ``bahfs zeroshot score``: the zero-shot LLM protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bahfs.cli.common import RESEARCH, StoreArg, app, friendly, print_table

zeroshot = typer.Typer(no_args_is_help=True, help="The zero-shot LLM protocol: prompts out, "
                       "answers in, official metrics.",
                       epilog="Example: bahfs zeroshot export /data/bah/store --out "
                              "prompts.jsonl")
app.add_typer(zeroshot, name="zeroshot", rich_help_panel=RESEARCH)


@zeroshot.command("export", epilog="Example: bahfs zeroshot export /data/bah/store --out "
                                   "prompts.jsonl --split test")
@friendly
def export_cmd(
    store: StoreArg,
    out: Annotated[Path, typer.Option("--out", help="JSONL file of prompts to write.")],
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    level: Annotated[str, typer.Option(help="video (8 frames per video) or frame "
                                            "(8-frame windows).")] = "video",
    transcript: Annotated[str, typer.Option(help="release (the release's transcript) or "
                                                 "asr (bahfs's own, the words extractor).")]
    = "release",
    prompts: Annotated[Path | None, typer.Option(
        help="YAML of variant -> prompt text ({transcript} where it goes); default: "
             "bahfs's wording of the five variants.")] = None,
) -> None:
    """Write the prompts: one JSONL record per video (or window) and prompt variant.

    Each record: id, video file, frame indices to show, prompt text.
    """
    from training.zeroshot import export_prompts, load_prompts

    n = export_prompts(store, out, split=split, level=level, transcript=transcript,
                       prompts=load_prompts(prompts))
    typer.echo(f"{n} prompts -> {out}; answer each as {{\"id\": ..., \"answer\": ...}} "
               "per line, then `bahfs zeroshot score`")


@zeroshot.command("score", epilog="Example: bahfs zeroshot score /data/bah/store "
                                  "prompts.jsonl answers.jsonl")
@friendly
def score_cmd(
    store: StoreArg,
    prompts: Annotated[Path, typer.Argument(
        metavar="PROMPTS",
        show_default=False, help="JSONL written by `bahfs zeroshot export`.")],
    answers: Annotated[Path, typer.Argument(
        metavar="ANSWERS",
        show_default=False, help="JSONL of {\"id\", \"answer\"} per line.")],
) -> None:
    """Score a model's answers: the official metrics per prompt variant.

    Answers are read back tolerantly; the unparseable ones are counted.
    """
    import json

    import polars as pl

    from training.zeroshot import score

    result = score(store, prompts, answers)
    rows = []
    for variant, r in result.items():
        m = r.get("video") or r.get("frame") or {}
        rows.append({"variant": variant, "level": "video" if "video" in r else "frame",
                     "prompts": r["prompts"], "answered": r["answered"],
                     "unparseable": r["unparseable"], "scored": r["scored"],
                     **{k: round(m[k], 4) if k in m else None
                        for k in ("accuracy", "f1_pos", "f1_neg", "avg_f1", "ap_pos")}})
    print_table("zero-shot LLM protocol: official metrics per prompt variant",
                pl.DataFrame(rows))
    out = Path(answers).with_suffix(".scores.json")
    out.write_text(json.dumps(result, indent=2))
    typer.echo(f"written: {out}")
