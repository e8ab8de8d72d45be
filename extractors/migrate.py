"""Feature sets written before run options left the id, renamed once to their ids.

Until run options were told from identity (:mod:`extractors.identity`), a feature
set's id hashed its whole config, the detector's ``batch`` and ``words``'
``asr_batch_size`` included. :func:`migrate_feature_set_ids` moves such a feature
set to the id the same extractor, config and model give now: its directory is
renamed (one ``rename``, no feature re-extracted, no array rewritten), and its
attributes rewritten with the identity config, the run options under
``extra.run_options`` and the old id in ``previous_ids``. Two old feature sets that
differed only by a run option (``batch: 16`` and ``batch: 64``) become one: the
videos of the second move into the first, a video in both is kept once.

Every extraction run calls it before it lists pending videos (under the store's
table lock), so it happens once and is a quick check afterwards. A crash part-way
leaves every video readable under one of the two ids, and the next run finishes
the move. Feature sets whose extractor is not registered in this process are left
as they are (logged).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from extractors.base import REGISTRY
from extractors.identity import split_values
from store.access import load_policy
from store.errors import BahfsError
from store.features import FeatureSetSpec
from store.layout import (
    atomic_write_text,
    ensure_group,
    features_root,
    read_attrs,
    remove_tree,
    sync_dir,
)
from store.locks import store_lock

log = logging.getLogger("bahfs.extractors")


def current_attrs(attrs: dict[str, Any]) -> dict[str, Any] | None:
    """A feature set's attributes as this version writes them (identity config, run
    options in ``extra``), or None when its extractor is not registered here."""
    cls = REGISTRY.get(str(attrs.get("extractor")))
    if cls is None:
        return None
    ident, run = split_values(cls.Config, dict(attrs["config"]))
    extra = dict(attrs.get("extra", {}))
    if run:
        extra["run_options"] = {**extra.get("run_options", {}), **run}
    spec = FeatureSetSpec.from_attrs({**attrs, "config": ident, "extra": extra})
    return {**attrs, **spec.to_attrs()}


def migrate_feature_set_ids(store: Path) -> dict[str, str]:
    """Rename the store's feature sets whose id included run options (see the module
    docstring); return {old id: new id} of those moved."""
    root = features_root(store)
    if not root.is_dir():
        return {}
    moved: dict[str, str] = {}
    with store_lock(store):
        for path in sorted(d for d in root.iterdir() if (d / "zarr.json").is_file()):
            attrs = read_attrs(path)
            try:
                new = current_attrs(attrs)
            except BahfsError as exc:
                log.warning("feature set %s left as it is: %s", path.name, exc)
                continue
            if new is None:
                log.warning("feature set %s left as it is: extractor %r not registered",
                            path.name, attrs.get("extractor"))
                continue
            if new["id"] == path.name and new["config"] == attrs["config"]:
                continue  # written by this version
            old_id = str(attrs.get("id") or path.name)
            _move(store, path, root / new["id"], new, old_id)
            moved[old_id] = new["id"]
            log.info("feature set %s is now %s (run options left its id)", old_id, new["id"])
    return moved


def _move(store: Path, path: Path, target: Path, attrs: dict[str, Any], old_id: str) -> None:
    if path != target and not target.exists():
        os.rename(path, target)
        sync_dir(target.parent)
    elif path != target:  # another old id of the same feature set moved there first
        for pdir in sorted(d for d in path.iterdir() if d.is_dir()):
            for vdir in sorted(d for d in pdir.iterdir() if (d / "zarr.json").is_file()):
                there = target / pdir.name / vdir.name
                if (there / "zarr.json").is_file():
                    continue  # the same numbers, already there
                ensure_group(there.parent, {"participant_id": pdir.name},
                             access=load_policy(store))
                os.rename(vdir, there)
                sync_dir(there.parent)
        attrs = read_attrs(target)
        remove_tree(store, path)
    previous = sorted({*attrs.get("previous_ids", []), old_id} - {attrs["id"]})
    meta = json.loads((target / "zarr.json").read_text(encoding="utf-8"))
    meta["attributes"] = {**attrs, "previous_ids": previous}
    atomic_write_text(target / "zarr.json", json.dumps(meta, indent=2),
                      access=load_policy(store))
