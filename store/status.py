"""What a store holds and what is left to do, on one screen (``bahfs status``).

Read only, and cheap at the real release's size: the tables, one listing of each
feature set's published videos, one pass over the store's files (size on disk and
drift from the access policy at once). Nothing is decoded or opened beyond attributes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from store.access import load_policy, survey
from store.backend import Store
from store.errors import NotFoundError
from store.local import LocalStore, as_store

#: extract runs shown
LAST_RUNS = 3


@dataclass(frozen=True)
class FeatureSetStatus:
    """Videos of the ``videos`` table by state, each counted once: extracted, pending
    (to do next run), quarantined (a fault of their own), bugs (left pending by a bug,
    their tracebacks in the ``bugs`` table)."""

    feature_set: str
    extractor: str
    extracted: int
    pending: int
    quarantined: int
    bugs: int


@dataclass(frozen=True)
class RunStatus:
    run_id: str
    started_at: str
    seconds: float | None
    outcome: str
    devices: list[str]
    extracted: int


@dataclass(frozen=True)
class StoreStatus:
    store: str
    releases: list[str]
    batches: list[dict[str, Any]]
    participants: dict[str, int]
    videos: dict[str, int]
    exclusion_reasons: dict[str, int]
    feature_sets: list[FeatureSetStatus]
    runs: list[RunStatus]
    size_bytes: int
    access: str
    drifting_paths: int
    next_step: str


def _seconds(start: str | None, end: str | None) -> float | None:
    try:
        return (datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))
                ).total_seconds()
    except ValueError:
        return None


def _outcome(detail: str | None) -> str:
    d = json.loads(detail) if detail else {}
    if d.get("halted"):
        return f"stopped: {d['halted']}" if isinstance(d["halted"], str) else "stopped"
    bad = {k: len(d.get(k) or ()) for k in ("failed", "bugs", "quarantined", "bad_batches")}
    said = [f"{n} {k.replace('_', ' ')}" for k, n in bad.items() if n]
    return "ok" if not said else "finished, " + ", ".join(said)


def _runs(st: Store) -> list[RunStatus]:
    runs = st.read_table_or_empty("extract_runs").tail(LAST_RUNS)
    ext = st.read_table_or_empty("extracted")
    out = []
    for run_id, start, end, n, detail in runs.select(
            "run_id", "started_at", "finished_at", "extracted", "detail").iter_rows():
        during = ext.filter((pl.col("written_at") >= start) & (pl.col("written_at") <= end))
        devices = sorted({d or "unknown" for d in during["device"].to_list()})
        out.append(RunStatus(run_id, start, _seconds(start, end), _outcome(detail),
                             devices, n))
    return out[::-1]


def _feature_sets(st: Store, videos: pl.DataFrame) -> list[FeatureSetStatus]:
    consented = set(videos["video_id"].to_list())
    quarantined = set(st.read_table_or_empty("quarantine")["video_id"].to_list())
    bugged = set(st.read_table_or_empty("bugs")["video_id"].to_list())
    out = []
    for fs in st.feature_set_ids():
        done = {v.video_id for v in st.videos(fs)}
        todo = consented - done
        out.append(FeatureSetStatus(
            fs, str(st.feature_set_attrs(fs).get("extractor", "")), len(done & consented),
            len(todo - quarantined - bugged), len(todo & quarantined),
            len(todo & bugged - quarantined)))
    return out


def _releases(st: Store) -> tuple[list[str], list[dict[str, Any]]]:
    batches = st.read_table_or_empty("batches").select(
        "batch", "source", "ingested_at", "participants", "videos")
    try:
        dataset = st.read_manifest().get("dataset", [])
    except NotFoundError:  # nothing ingested yet
        dataset = []
    releases = [dataset] if isinstance(dataset, str) else list(dataset)
    return releases, batches.to_dicts()


def next_step(store: Store | Path, status: dict[str, Any]) -> str:
    """The one command to run next, given what :func:`store_status` found."""
    st = as_store(store)
    where = st.location  # as the user names it
    if not st.table_exists("videos"):
        return f"bahfs check-release DATASET, then bahfs ingest DATASET {where}"
    if status["drifting_paths"]:
        return f"bahfs verify {where} --fix"
    source = status["releases"][0] if len(status["releases"]) == 1 else "SOURCE"
    fsets = status["feature_sets"]
    if not fsets or any(f.pending for f in fsets):
        return f"bahfs extract {source} {where}"
    if any(f.quarantined for f in fsets):
        return f"bahfs quarantine list {where}"
    if any(f.bugs for f in fsets):
        return f"bahfs quarantine bugs {where}"
    return f"bahfs train {where}"


def _footprint(st: Store) -> tuple[int, int, str]:
    """(bytes the store takes, paths drifting from its access policy, the policy in
    words): one pass over a folder; a bucket's listing (access there is the bucket
    policy's and IAM's)."""
    if isinstance(st, LocalStore):
        policy = load_policy(st.root)
        size, drift = survey(st.root, policy)
        return size, len(drift), (
            f"{policy.scope} (files {policy.file_mode:04o}, folders {policy.dir_mode:04o}"
            + (f", group {policy.group})" if policy.group else ")"))
    from store.s3 import S3Store

    size = sum(n for _, n in st.bucket.listing("")) if isinstance(st, S3Store) else 0
    return size, 0, "the bucket's policy and IAM (no POSIX modes in a bucket)"


def store_status(store: Store | Path) -> StoreStatus:
    """Everything ``bahfs status`` shows about ``store`` (an existing store: a folder or
    a bucket)."""
    st = as_store(store)
    videos = st.read_table_or_empty("videos")
    excl = st.read_table_or_empty("exclusions")
    withdrawn = st.read_table_or_empty("withdrawals").height
    reasons = dict(excl.group_by("reason").len().sort("reason").iter_rows())
    quarantined = st.read_table_or_empty("quarantine")["video_id"].n_unique()
    size, drifting, access = _footprint(st)
    releases, batches = _releases(st)
    found: dict[str, Any] = {
        "releases": releases, "batches": batches,
        "participants": {"consented": st.read_table_or_empty("participants").height,
                         "excluded": excl.height, "withdrawn": withdrawn},
        "videos": {"consented": videos.height, "excluded": int(excl["n_videos"].sum()),
                   "quarantined": quarantined},
        "exclusion_reasons": reasons, "feature_sets": _feature_sets(st, videos),
        "runs": _runs(st), "size_bytes": size, "access": access,
        "drifting_paths": drifting}
    return StoreStatus(store=st.location, next_step=next_step(st, found), **found)
