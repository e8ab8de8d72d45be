"""``bahfs train``, ``bahfs evaluate``, ``bahfs predict`` and ``bahfs personalise``:
baselines from the store, the official metrics, challenge submissions, the
personalisation protocol."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from bahfs.cli.common import (
    RESEARCH,
    StoreLocationArg,
    app,
    csv_names,
    friendly,
    print_table,
)


def _metrics_table(results: dict[str, Any]) -> Any:
    import polars as pl

    rows = []
    for split, r in results.items():
        if "error" in r:
            continue
        for level in ("frame", "video"):
            m = r[level]
            rows.append({"split": split, "level": level,
                         "n": r["frames"] if level == "frame" else r["videos"],
                         **{k: round(m[k], 4) for k in ("accuracy", "f1_pos", "f1_neg",
                                                        "avg_f1", "w_f1", "ap_pos")},
                         "ap_free": round(m["ap_pos_threshold_free"], 4)})
        s = r["per_participant"]["summary"]
        rows.append({"split": split, "level": "participant mean",
                     "n": s["avg_f1"]["n"],
                     **{k: round(s[k]["mean"], 4) for k in ("accuracy", "f1_pos", "f1_neg",
                                                             "avg_f1", "w_f1", "ap_pos")},
                     "ap_free": round(s["ap_pos_threshold_free"]["mean"], 4)})
        rows.append({"split": split, "level": "participant std",
                     "n": s["avg_f1"]["n"],
                     **{k: round(s[k]["std"], 4) for k in ("accuracy", "f1_pos", "f1_neg",
                                                            "avg_f1", "w_f1", "ap_pos")},
                     "ap_free": round(s["ap_pos_threshold_free"]["std"], 4)})
    return pl.DataFrame(rows)


class _ToStderr(logging.Handler):
    """Training's warnings (e.g. no GPU for --device auto) as yellow lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.secho(f"warning: {record.getMessage()}", fg=typer.colors.YELLOW, err=True)


@contextmanager
def warnings_shown() -> Iterator[None]:
    """Show what training logs at WARNING and above to the user while a command runs."""
    logger = logging.getLogger("bahfs.training")
    handler = _ToStderr(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


Device = Annotated[str | None, typer.Option(
    help="auto, cpu, cuda or cuda:N (default: $BAHFS_DEVICE, else auto: the first GPU, "
         "else the CPU with a warning). CUDA asked for where there is none is an error.")]
Modalities = Annotated[str, typer.Option(
    help="Comma separated: extractor names, or name=featureset[:array].")]
FRAME_MODELS = "mlp, tcn, fusion_concat, fusion_attention"
OnStore = Annotated[str | None, typer.Option(
    "--on-store", show_default=False,
    help="A store other than the one the run was trained on (default: the run's own): "
         "a folder or s3://BUCKET/PREFIX.")]
S3CacheDir = Annotated[Path | None, typer.Option(
    show_default=False,
    help="A store in a bucket: the local folder its arrays are fetched into on first "
         "read, then read from (default: bahfs/s3 under the OS cache folder, "
         "$XDG_CACHE_HOME or ~/.cache).")]
S3CacheMb = Annotated[int, typer.Option(
    min=0, help="The bound of --s3-cache in MiB, least recently used videos removed "
                "first (0: no cache, every read a ranged GET).")]
DEFAULT_CACHE_MB = 10240  # store.s3_cache.DEFAULT_CACHE_MB (not imported: a fast --help)


METRICS_NOTE = ("ap_pos: the official AP (thresholds 0.000-0.999); ap_free: threshold-free "
                "AP (scikit-learn); participant mean/std: frame-level metrics per participant")


@app.command(rich_help_panel=RESEARCH,
             epilog="Example: bahfs train /data/bah/store --model tcn --modalities "
                    "face,audio,words --preset paper")
@friendly
def train(
    store: StoreLocationArg,
    model: Annotated[str, typer.Option(
        help=f"{FRAME_MODELS} (frame level), or transcript (video level: logistic "
             "regression on each transcript's mean word vector).")] = "tcn",
    modalities: Modalities = "face,audio,words",
    preset: Annotated[str | None, typer.Option(
        help="paper: the paper's setup (windows 696, hop 48, batch 4, SGD lr 0.008 "
             "momentum 0.9 Nesterov, weight decay 1e-4, lr /10 every 40 epochs, 60 epochs, "
             "the epoch with the best validation AP); options given beside it win "
             "(docs/training.md).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs \\[default: 5].")] = None,
    window: Annotated[int | None, typer.Option(
        help="Window length in frames \\[default: 96].")] = None,
    hop: Annotated[int | None, typer.Option(
        help="Hop between training windows \\[default: 48].")] = None,
    batch_size: Annotated[int | None, typer.Option(
        help="Windows per batch \\[default: 64].")] = None,
    optimizer: Annotated[str | None, typer.Option(
        help="sgd (with --momentum), adam or adamw \\[default: adamw].")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate \\[default: 0.002].")] = None,
    momentum: Annotated[float | None, typer.Option(
        help="SGD momentum \\[default: 0.9].")] = None,
    weight_decay: Annotated[float | None, typer.Option(
        help="Weight decay \\[default: 1e-4].")] = None,
    schedule: Annotated[str | None, typer.Option(
        help="Learning-rate schedule per epoch: none, cosine, or step (x0.1 every "
             "30 epochs) \\[default: none].")] = None,
    select: Annotated[str | None, typer.Option(
        help="The epoch the run keeps: val_ap_pos (the official rule: best validation "
             "AP), val_avg_f1, or last; a store without a validation split keeps the "
             "last \\[default: val_ap_pos].")] = None,
    patience: Annotated[int | None, typer.Option(
        help="Stop after this many epochs without a better validation score "
             "(0: never) \\[default: 0].")] = None,
    sampler: Annotated[str, typer.Option(help="undersample, participant or all.")]
    = "undersample",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    workers: Annotated[int, typer.Option(help="DataLoader worker processes.")] = 0,
    cache_mb: Annotated[int, typer.Option(
        help="MiB of per-video features each dataset keeps in memory per process (0: "
             "read the store every batch).")] = 2048,
    out: Annotated[Path, typer.Option(help="Where run directories go.")] = Path("runs"),
    device: Device = None,
    s3_cache: S3CacheDir = None,
    s3_cache_mb: S3CacheMb = DEFAULT_CACHE_MB,
) -> Path:
    """Train a baseline from the store's features (no video decoding).

    Each epoch is evaluated on the validation split and the run keeps the selected
    epoch; val/test metrics are printed beside the all-negative baseline.
    """
    from store.devices import parse_device
    from training.data import open_run_store
    from training.protocol import preset as preset_options
    from training.run import TrainConfig
    from training.run import train as run_train
    from training.transcript import train_transcript

    names = tuple(csv_names(modalities))
    setting = parse_device(device)
    if model == "transcript":  # one words feature set: the one named, else `words`
        if setting.kind == "cuda":
            typer.secho(f"note: the transcript baseline is scikit-learn on the CPU; "
                        f"device {setting} is not used", fg=typer.colors.YELLOW, err=True)
        words = names[0] if len(names) == 1 else "words"
        run = train_transcript(open_run_store(store, s3_cache, s3_cache_mb), words,
                               seed=seed, out=out, log=typer.echo)
        modalities = words
    else:
        given = {"epochs": epochs, "window": window, "hop": hop, "batch_size": batch_size,
                 "optimizer": optimizer, "lr": lr, "momentum": momentum,
                 "weight_decay": weight_decay, "schedule": schedule, "select": select,
                 "patience": patience}
        options = {**preset_options(preset),
                   **{k: v for k, v in given.items() if v is not None}}
        cfg = TrainConfig(store=store, model=model, sampler=sampler, seed=seed,
                          workers=workers, cache_mb=cache_mb, out=out, modalities=names,
                          device=str(setting), s3_cache=s3_cache, s3_cache_mb=s3_cache_mb,
                          preset=preset, **options)
        with warnings_shown():
            run = run_train(cfg, log=typer.echo)
    results = json.loads((run / "results.json").read_text())
    print_table(f"{model} on {modalities}: official BAH metrics", _metrics_table(
        results["splits"]))
    typer.echo(METRICS_NOTE)
    for split, r in results["splits"].items():
        if "error" in r:
            typer.secho(f"{split}: not evaluated ({r['error']})", fg=typer.colors.YELLOW)
        elif "all_negative" in r:
            base = r["all_negative"]
            typer.echo(f"{split}: AVGF1 frame {r['frame']['avg_f1']:.4f}, video "
                       f"{r['video']['avg_f1']:.4f}; all-negative baseline (nothing "
                       f"predicted A/H): frame {base['frame']['avg_f1']:.4f}, video "
                       f"{base['video']['avg_f1']:.4f}")
    if "selected_epoch" in results:
        sel = results["selection"]
        typer.echo(f"kept epoch {results['selected_epoch'] + 1} of {sel['epochs_run']} "
                   f"(select {sel['rule']})")
    typer.echo(f"run: {run}")
    return run


@app.command(rich_help_panel=RESEARCH, epilog="Example: bahfs evaluate runs/tcn-0001 "
                                              "--split test")
@friendly
def evaluate(
    run: Annotated[Path, typer.Argument(show_default=False, metavar="RUN",
                                        help="Run directory written by `bahfs train`.")],
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    store: OnStore = None,
    device: Device = None,
) -> None:
    """Evaluate a trained run on a split: frame- and video-level official metrics.

    Also per participant, age range and gender; written to RUN/eval_SPLIT.json.
    """
    from training.run import evaluate as run_evaluate

    with warnings_shown():
        result = run_evaluate(run, split, store, device)
    print_table(f"{run.name} on {split}", _metrics_table({split: result}))
    typer.echo(METRICS_NOTE)
    typer.echo(f"written: {run / f'eval_{split}.json'}")


@app.command(rich_help_panel=RESEARCH, epilog="Example: bahfs predict runs/tcn-0001 "
                                              "--split test --out submission.csv")
@friendly
def predict(
    run: Annotated[Path, typer.Argument(show_default=False, metavar="RUN",
                                        help="Run directory written by `bahfs train`.")],
    out: Annotated[Path, typer.Option("--out", help="Submission file to write.")],
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    video_csv: Annotated[Path | None, typer.Option(
        help="The organisers' video.csv: predict its videos, in its row order.")] = None,
    store: OnStore = None,
    device: Device = None,
) -> None:
    """Write a challenge submission: video-level predictions, one line per video.

    Each line is `<video id>,<p0>,<p1>,<pred>` (p0 + p1 == 1 exactly as the validator
    parses it), ids as the release spells them.
    """
    from training.predict import predict as run_predict

    with warnings_shown():
        run_predict(run, out, split=split, video_csv=video_csv, store=store, device=device)
    lines = out.read_text(encoding="utf-8").splitlines()
    positive = sum(line.endswith(",1") for line in lines)
    typer.echo(f"{len(lines)} videos ({positive} predicted A/H) -> {out}")


@app.command(rich_help_panel=RESEARCH,
             epilog="Example: bahfs personalise /data/bah/store --model tcn")
@friendly
def personalise(
    store: StoreLocationArg,
    model: Annotated[str, typer.Option(help=f"{FRAME_MODELS}.")] = "tcn",
    modalities: Modalities = "face,audio,words",
    epochs: Annotated[int, typer.Option(help="Source training epochs.")] = 5,
    finetune_epochs: Annotated[int, typer.Option(help="Oracle fine-tuning epochs.")] = 3,
    split: Annotated[str, typer.Option(help="Whose participants are the targets.")] = "test",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: Annotated[Path, typer.Option(help="Where run directories go.")] = Path("runs"),
    device: Device = None,
) -> None:
    """The paper's personalisation protocol: each participant a target domain.

    Each participant of SPLIT has its own train/val/test videos; source-only and
    oracle (fine-tuned on the target) baselines, per participant and as mean +- std.
    """
    import polars as pl

    from training.personalise import personalise as run_personalise
    from training.run import TrainConfig

    cfg = TrainConfig(store=store, model=model, epochs=epochs, seed=seed, out=out,
                      modalities=tuple(csv_names(modalities)), device=device)
    with warnings_shown():
        run = run_personalise(cfg, finetune_epochs=finetune_epochs, split=split,
                              log=typer.echo)
    results = json.loads((run / "results.json").read_text())
    rows = [{"baseline": b, "targets": s["avg_f1"]["n"],
             **{k: f"{s[k]['mean']:.4f} ± {s[k]['std']:.4f}"
                for k in ("avg_f1", "f1_pos", "f1_neg", "ap_pos")}}
            for b, s in results["summary"].items()]
    print_table("personalisation (frame level, mean ± std over target participants)",
                pl.DataFrame(rows))
    for key, why in results["skipped"].items():
        typer.secho(f"skipped target {key}: {why}", fg=typer.colors.YELLOW)
    typer.echo(f"run: {run}")
