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

Every extraction run calls it before it lists pending videos, so it happens once
and is a quick check afterwards. The move itself is a store operation
(:mod:`store.migrate`: under the table lock; a crash part-way leaves every video
readable under one of the two ids, and the next run finishes the move); this
module gives it the conversion, which needs the extractor classes. Feature sets
whose extractor is not registered in this process are left as they are (logged).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from extractors.base import REGISTRY
from extractors.identity import split_values
from store.backend import Store
from store.features import FeatureSetSpec
from store.migrate import migrate_feature_sets


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


def migrate_feature_set_ids(store: Store | Path) -> dict[str, str]:
    """Rename the store's feature sets whose id included run options (see the module
    docstring); return {old id: new id} of those moved."""
    return migrate_feature_sets(store, current_attrs)
