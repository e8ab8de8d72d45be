"""Moving a store's feature sets to the ids this version gives them.

A feature set whose attributes a converter rewrites (``convert(attrs)`` returns the
attributes as this version writes them, with their ``id``; None: leave it) is
moved to its new id: its entry renamed in one step (no array rewritten), or, where
another old id of the same feature set already moved there, its videos moved in
(a video in both is kept once) and the old entry removed. The attributes are then
rewritten with the old id in ``previous_ids``. Everything runs under the store's
table lock; a crash part-way leaves every video readable under one of the two ids,
and the next run finishes the move. The conversion that needs extractor classes
lives in :mod:`extractors.migrate`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from store.backend import Store
from store.errors import BahfsError
from store.local import as_store

log = logging.getLogger("bahfs.store")

#: attributes as stored -> attributes as this version writes them (None: leave it)
Convert = Callable[[dict[str, Any]], dict[str, Any] | None]


def migrate_feature_sets(store: Store | Path, convert: Convert) -> dict[str, str]:
    """Move every feature set whose attributes ``convert`` changes to its new id;
    return {old id: new id} of those moved."""
    st = as_store(store)
    if not st.has_features():
        return {}
    moved: dict[str, str] = {}
    with st.lock():
        for fs in st.feature_set_ids():
            attrs = st.feature_set_attrs(fs)
            try:
                new = convert(attrs)
            except BahfsError as exc:
                log.warning("feature set %s left as it is: %s", fs, exc)
                continue
            if new is None:
                log.warning("feature set %s left as it is: extractor %r not registered",
                            fs, attrs.get("extractor"))
                continue
            if new["id"] == fs and new["config"] == attrs["config"]:
                continue  # written by this version
            old_id = str(attrs.get("id") or fs)
            move_feature_set(st, fs, new, old_id)
            moved[old_id] = new["id"]
            log.info("feature set %s is now %s", old_id, new["id"])
    return moved


def move_feature_set(st: Store, fs: str, attrs: dict[str, Any], old_id: str) -> None:
    """Move feature set ``fs`` (once ``old_id``) to ``attrs["id"]`` with ``attrs``."""
    target = str(attrs["id"])
    if fs != target and target not in st.feature_set_folders():
        st.rename_feature_set(fs, target)
    elif fs != target:  # another old id of the same feature set moved there first
        st.merge_feature_set(fs, target)
        attrs = st.feature_set_attrs(target)
    previous = sorted({*attrs.get("previous_ids", []), old_id} - {target})
    st.write_feature_set_attrs(target, {**attrs, "previous_ids": previous})
