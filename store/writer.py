"""Publishing one video's features atomically.

A video is written completely into a private staging directory, synced to disk
(every file, then its folders), then renamed into
``features.zarr/<feature set>/<participant>/<video>`` and the rename synced:
readers see all of it or nothing, and after a power loss a published video has
all its chunks. A crash leaves only a staging directory, which no reader looks at
and which the next writer removes (:func:`store.layout.clean_stale_staging`).
Writing a video that is already there is a no-op unless ``overwrite`` is asked
for. Different processes may write different videos at once: nothing is shared
but the (idempotent) group metadata. Every path gets the store's access policy
(:mod:`store.access`): zarr-python writes the chunks with the umask's modes, so the
staged video is given the policy's modes in one pass before it is synced and published.

Arrays are uncompressed and stored as one chunk per video, chosen by measurement
(``benchmarks/store.py``, ``docs/store.md``): float16 features compress ~1.1x with
zstd while reads get ~2x slower, and a whole-video chunk lets a window be one read.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr

from store.access import load_policy
from store.errors import CorruptError
from store.faults import fault_point
from store.features import FRAME, TIMESTAMPS, TIMESTAMPS_DOC, FeatureSetSpec, VideoFeatures
from store.layout import (
    LAYOUT_VERSION,
    clean_stale_staging,
    ensure_group,
    features_root,
    is_published,
    read_attrs,
    remove_tree,
    staging_dir,
    sync_dir,
    sync_tree,
    video_dir,
)
from store.tables import utc_now

Outcome = Literal["written", "skipped", "overwritten"]


@dataclass(frozen=True)
class WriteResult:
    fs_id: str
    video_id: str
    outcome: Outcome
    n_frames: int


class FeatureWriter:
    """Writes videos' features into the store at ``store``."""

    def __init__(self, store: Path) -> None:
        self.store = Path(store)
        self.access = load_policy(self.store)
        ensure_group(features_root(self.store), {"bahfs_layout": LAYOUT_VERSION},
                     access=self.access)
        clean_stale_staging(self.store)

    def ensure_featureset(self, spec: FeatureSetSpec) -> Path:
        """Create the feature set's group with its provenance, or check it matches."""
        path = features_root(self.store) / spec.id
        if (path / "zarr.json").exists():
            stored = read_attrs(path)
            if FeatureSetSpec.from_attrs(stored).id != spec.id:
                raise CorruptError("feature set metadata does not match its id", path=path,
                                   expected=f"provenance of {spec.id}")
            return path
        ensure_group(path, {**spec.to_attrs(), "created": utc_now()}, access=self.access)
        return path

    def exists(self, fs_id: str, participant_id: str, video_id: str) -> bool:
        return is_published(self.store, fs_id, participant_id, video_id)

    def write(self, features: VideoFeatures, *, overwrite: bool = False) -> WriteResult:
        """Publish ``features`` atomically; a present video is skipped unless overwrite."""
        spec = features.spec
        self.ensure_featureset(spec)
        final = video_dir(self.store, spec.id, features.participant_id, features.video_id)
        n = features.n_frames
        if final.exists() and not overwrite:
            return WriteResult(spec.id, features.video_id, "skipped", n)
        ensure_group(final.parent, {"participant_id": features.participant_id},
                     access=self.access)
        stage = staging_dir(self.store, self.access)
        try:
            built = stage / features.video_id
            self._build(built, features)
            fault_point("staged")  # crash tests (store.faults): off unless asked for
            self.access.apply_tree(built)  # zarr wrote with the umask's modes
            sync_tree(built)  # the data is on disk before the rename publishes it
            outcome: Outcome = "written"
            if final.exists():  # overwrite: move the old one out of sight first
                remove_tree(self.store, final)
                outcome = "overwritten"
            fault_point("rename")
            try:
                os.rename(built, final)
            except OSError as exc:  # another writer published it in between
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    return WriteResult(spec.id, features.video_id, "skipped", n)
                raise
            sync_dir(final.parent)  # and the rename itself
            fault_point("published")
            return WriteResult(spec.id, features.video_id, outcome, n)
        finally:
            shutil.rmtree(stage, ignore_errors=True)

    @staticmethod
    def _build(path: Path, features: VideoFeatures) -> None:
        attrs = {"video_id": features.video_id, "participant_id": features.participant_id,
                 "feature_set": features.spec.id, "n_frames": features.n_frames,
                 "written_at": utc_now(), **features.attrs}
        group = zarr.create_group(str(path), zarr_format=3, attributes=attrs)
        _frame_array(group, TIMESTAMPS, features.timestamps.astype(np.float64), (FRAME,),
                     {"description": TIMESTAMPS_DOC})
        for a in features.spec.arrays:
            # CF's `coordinates`: xarray shows `timestamps` as the frame coordinate
            _frame_array(group, a.name, features.arrays[a.name], a.dimension_names,
                         {"description": a.doc, "coordinates": TIMESTAMPS})
        for dim, labels in features.spec.coordinates().items():
            # xarray's convention: a 1-d array named after its only axis labels that axis
            group.create_array(dim, data=np.array(labels, dtype=np.dtypes.StringDType()),
                               chunks=(len(labels),), compressors=None,
                               dimension_names=(dim,))


def _frame_array(group: zarr.Group, name: str, data: np.ndarray, dims: tuple[str, ...],
                 attrs: dict[str, Any]) -> None:
    """One per-frame array: one uncompressed chunk, named axes, described."""
    group.create_array(name, data=data, chunks=data.shape, compressors=None, fill_value=0,
                       dimension_names=dims, attributes=attrs,
                       config={"write_empty_chunks": True})
