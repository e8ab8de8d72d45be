"""polars queries over the ingested tables: the BAH paper's dataset tables and cue analyses.

Each function takes a store directory and returns a polars DataFrame:

- :func:`split_summary` - counts and A/H rates per split (paper Tables 2-3);
- :func:`cue_frequency` - how often each cue is coded, per modality;
- :func:`modality_cooccurrence` - how often two modalities carry cues in one segment;
- :func:`modalities_per_segment` - distribution of the number of modalities per segment;
- :func:`inconsistency_codes` - frequency of the cross-modal inconsistency codes;
- :func:`ah_by_question` - A/H rate per question;
- :func:`ah_by_group` - A/H rate by a demographic field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import polars as pl

from store.backend import Store
from store.errors import ConfigError
from store.local import as_store
from store.schema import MODALITIES, SPLITS

CUE_MODALITIES: Final = tuple(m for m in MODALITIES if m != "inconsistency")
DEMOGRAPHIC_FIELDS: Final = ("gender", "age_range", "ethnicity_simplified", "province",
                             "birth_country", "is_student")


def video_frame_counts(store: Store | Path) -> pl.DataFrame:
    """Per video: frames and A/H frames, from the frame-label table."""
    return (as_store(store).scan_table("frame_labels")
            .group_by("video_id")
            .agg(pl.len().alias("frames"), pl.col("label").cast(pl.Int64).sum().alias("ah_frames"))
            .collect())


def _video_facts(store: Store | Path) -> pl.DataFrame:
    """Every video with its frame counts. A video whose label the release withholds
    counts in participants, videos and hours; its A/H figures are null and left out
    of the sums and rates (frames counts labelled frames)."""
    videos = as_store(store).table("videos")
    return videos.join(video_frame_counts(store), on="video_id", how="left",
                       maintain_order="left")


def _rates() -> list[pl.Expr]:
    return [
        pl.col("participant_id").n_unique().alias("participants"),
        pl.len().alias("videos"),
        pl.col("global_label").cast(pl.Int64).sum().alias("ah_videos"),
        (pl.col("global_label").cast(pl.Float64).mean() * 100).round(2).alias("ah_video_pct"),
        pl.col("frames").sum().alias("frames"),
        pl.col("ah_frames").sum().alias("ah_frames"),
        (pl.col("ah_frames").sum() / pl.col("frames").sum() * 100).round(2)
        .alias("ah_frame_pct"),
    ]


def split_summary(store: Store | Path) -> pl.DataFrame:
    """Participants, videos, frames, A/H videos/frames, segments and duration per split."""
    facts = _video_facts(store)
    segs = (as_store(store).table("segments")
            .join(facts.select("video_id", "split", "fps"), on="video_id")
            .with_columns(((pl.col("end_frame") - pl.col("start_frame") + 1) / pl.col("fps"))
                          .alias("seconds")))
    seg_stats = segs.group_by("split").agg(
        pl.len().alias("segments"), pl.col("seconds").mean().round(2).alias("mean_segment_s"))
    per_split = (facts.group_by("split").agg(*_rates(),
                                             (pl.col("duration_s").sum() / 3600).round(3)
                                             .alias("hours"))
                 .join(seg_stats, on="split", how="left"))
    total = (facts.select(pl.lit("all").alias("split"), *_rates(),
                          (pl.col("duration_s").sum() / 3600).round(3).alias("hours"))
             .with_columns(pl.lit(segs.height, pl.UInt32).alias("segments"),
                           pl.lit(round(float(segs["seconds"].mean() or 0.0), 2))  # type: ignore[arg-type]
                           .alias("mean_segment_s")))
    order = {s: i for i, s in enumerate((*SPLITS, "all"))}
    out = pl.concat([per_split, total.select(per_split.columns)], how="vertical_relaxed")
    return (out.with_columns(pl.col("segments").fill_null(0))
            .sort(pl.col("split").replace_strict(order, default=99)))


def cue_frequency(store: Store | Path) -> pl.DataFrame:
    """Per modality and cue: segments coded with it and its share of all segments."""
    n_seg = as_store(store).table("segments").height
    cues = as_store(store).table("cues")
    return (cues.unique(["video_id", "segment", "modality", "cue"])
            .group_by("modality", "cue").agg(pl.len().alias("segments"))
            .with_columns((pl.col("segments") / max(n_seg, 1) * 100).round(2)
                          .alias("pct_of_segments"))
            .sort(["modality", "segments", "cue"], descending=[False, True, False]))


def _segment_modalities(store: Store | Path) -> pl.DataFrame:
    """One row per (segment, modality) that carries at least one cue."""
    return (as_store(store).table("cues")
            .filter(pl.col("modality").is_in(CUE_MODALITIES))
            .select("video_id", "segment", "modality").unique())


def modality_cooccurrence(store: Store | Path) -> pl.DataFrame:
    """Long-form matrix: segments where modality_a and modality_b both carry cues."""
    sm = _segment_modalities(store)
    n_seg = max(as_store(store).table("segments").height, 1)
    pairs = (sm.join(sm, on=["video_id", "segment"], suffix="_b")
             .group_by(pl.col("modality").alias("modality_a"), "modality_b")
             .agg(pl.len().alias("segments")))
    grid = pl.DataFrame({"modality_a": list(CUE_MODALITIES)}).join(
        pl.DataFrame({"modality_b": list(CUE_MODALITIES)}), how="cross")
    return (grid.join(pairs, on=["modality_a", "modality_b"], how="left")
            .with_columns(pl.col("segments").fill_null(0).cast(pl.UInt32))
            .with_columns((pl.col("segments") / n_seg * 100).round(2).alias("pct_of_segments")))


def modalities_per_segment(store: Store | Path) -> pl.DataFrame:
    """How many segments carry cues in 0, 1, 2, 3 or 4 modalities."""
    segs = as_store(store).table("segments").select("video_id", "segment")
    counts = _segment_modalities(store).group_by("video_id", "segment").agg(
        pl.len().alias("n_modalities"))
    per_seg = segs.join(counts, on=["video_id", "segment"], how="left").with_columns(
        pl.col("n_modalities").fill_null(0).cast(pl.UInt32))
    grid = pl.DataFrame({"n_modalities": list(range(len(CUE_MODALITIES) + 1))},
                        schema={"n_modalities": pl.UInt32})
    return (grid.join(per_seg.group_by("n_modalities").agg(pl.len().alias("segments")),
                      on="n_modalities", how="left")
            .with_columns(pl.col("segments").fill_null(0)))


def inconsistency_codes(store: Store | Path) -> pl.DataFrame:
    """Frequency of each cross-modal inconsistency code (FL, FA, FB, LA, LB, AB)."""
    freq = cue_frequency(store).filter(pl.col("modality") == "inconsistency")
    return freq.select(pl.col("cue").alias("code"), "segments", "pct_of_segments")


def ah_by_question(store: Store | Path) -> pl.DataFrame:
    """A/H rates per question (1..7)."""
    return _video_facts(store).group_by("question").agg(*_rates()).sort("question")


def ah_by_group(store: Store | Path, field: str) -> pl.DataFrame:
    """A/H rates by a demographic field of the participants table."""
    if field not in DEMOGRAPHIC_FIELDS:
        raise ConfigError(f"unknown demographic field {field!r}",
                          expected=f"one of {list(DEMOGRAPHIC_FIELDS)}")
    people = as_store(store).table("participants").select("participant_id", field)
    facts = _video_facts(store).join(people, on="participant_id", how="left")
    return facts.group_by(field).agg(*_rates()).sort(field, nulls_last=True)


def all_stats(store: Store | Path) -> dict[str, pl.DataFrame]:
    """Every statistic, by name (what ``bahfs stats`` prints and plots); each table
    is read once (:meth:`store.backend.Store.table`)."""
    store = as_store(store)
    out = {
        "split_summary": split_summary(store),
        "cue_frequency": cue_frequency(store),
        "modality_cooccurrence": modality_cooccurrence(store),
        "modalities_per_segment": modalities_per_segment(store),
        "inconsistency_codes": inconsistency_codes(store),
        "ah_by_question": ah_by_question(store),
    }
    for f in DEMOGRAPHIC_FIELDS:
        out[f"ah_by_{f}"] = ah_by_group(store, f)
    return out
