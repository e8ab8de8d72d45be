"""PNG plots of the cue statistics (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from store.access import DEFAULT, AccessPolicy
from store.stats import CUE_MODALITIES


def _bar(ax: Any, labels: list[str], values: list[float], title: str, xlabel: str) -> None:
    ax.barh(labels[::-1], values[::-1], color="#4c72b0")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_xlim(0, 100)


def plot_stats(stats: dict[str, pl.DataFrame], out_dir: Path,
               access: AccessPolicy = DEFAULT) -> list[Path]:
    """Write the standard plots for :func:`store.stats.all_stats` output, with the
    modes of ``access`` (the store's policy, :func:`store.access.load_policy`);
    return paths."""
    access.make_dirs(out_dir)
    written: list[Path] = []

    cues = stats["cue_frequency"]
    mods = [*CUE_MODALITIES, "inconsistency"]
    fig, axes = plt.subplots(1, len(mods), figsize=(4 * len(mods), 5))
    for ax, mod in zip(axes, mods, strict=True):
        sub = cues.filter(pl.col("modality") == mod)
        _bar(ax, sub["cue"].to_list(), sub["pct_of_segments"].to_list(), mod, "% of segments")
    fig.suptitle("Cue frequency per modality")
    fig.tight_layout()
    written.append(out_dir / "cue_frequency.png")
    fig.savefig(written[-1], dpi=90)
    plt.close(fig)

    co = stats["modality_cooccurrence"]
    mat = np.array([[co.filter((pl.col("modality_a") == a) & (pl.col("modality_b") == b))
                     ["pct_of_segments"].item() for b in CUE_MODALITIES] for a in CUE_MODALITIES])
    fig, ax = plt.subplots(figsize=(5, 4.5))
    im = ax.imshow(mat, cmap="viridis", vmin=0, vmax=100)
    ax.set_xticks(range(len(CUE_MODALITIES)), CUE_MODALITIES)
    ax.set_yticks(range(len(CUE_MODALITIES)), CUE_MODALITIES)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            ax.text(j, i, f"{mat[i, j]:.0f}", ha="center", va="center", color="w")
    fig.colorbar(im, ax=ax, label="% of segments")
    ax.set_title("Modality co-occurrence in A/H segments")
    fig.tight_layout()
    written.append(out_dir / "modality_cooccurrence.png")
    fig.savefig(written[-1], dpi=90)
    plt.close(fig)

    groups = [k for k in stats if k.startswith("ah_by_")]
    fig, axes = plt.subplots(1, len(groups), figsize=(3.6 * len(groups), 4))
    for ax, key in zip(axes, groups, strict=True):
        df = stats[key]
        labels = [str(v) for v in df[df.columns[0]].to_list()]
        _bar(ax, labels, df["ah_frame_pct"].fill_null(0).to_list(), key.removeprefix("ah_by_"),
             "% A/H frames")
    fig.suptitle("A/H frame rate by question and demographic group")
    fig.tight_layout()
    written.append(out_dir / "ah_rates.png")
    fig.savefig(written[-1], dpi=90)
    plt.close(fig)
    for path in written:
        access.apply(path, is_dir=False)
    return written
