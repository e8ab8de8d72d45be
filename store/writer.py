"""Publishing one video's features atomically.

A video is written completely into a private staging directory, synced to disk
(every file, then its folders), then renamed into
``features.zarr/<feature set>/<participant>/<video>`` and the rename synced:
readers see all of it or nothing, and after a power loss a published video has
all its chunks. A crash leaves only a staging directory, which no reader looks at
and which the next writer removes (:meth:`store.backend.Store.prepare_writes`).
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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from store.backend import Outcome, Store, VideoRef
from store.features import FRAME, TIMESTAMPS, TIMESTAMPS_DOC, FeatureSetSpec, VideoFeatures
from store.local import as_store
from store.tables import utc_now

__all__ = ["FeatureWriter", "Outcome", "WriteResult"]


@dataclass(frozen=True)
class WriteResult:
    fs_id: str
    video_id: str
    outcome: Outcome
    n_frames: int


class FeatureWriter:
    """Writes videos' features into ``store`` (a :class:`~store.backend.Store`, or the
    folder of a local one)."""

    def __init__(self, store: Store | Path) -> None:
        self.store = as_store(store)
        self.store.prepare_writes()

    def ensure_featureset(self, spec: FeatureSetSpec) -> None:
        """Create the feature set's group with its provenance, or check it matches."""
        self.store.ensure_feature_set(spec)

    def exists(self, fs_id: str, participant_id: str, video_id: str) -> bool:
        return self.store.is_published(VideoRef(fs_id, participant_id, video_id))

    def write(self, features: VideoFeatures, *, overwrite: bool = False) -> WriteResult:
        """Publish ``features`` atomically; a present video is skipped unless overwrite."""
        spec = features.spec
        self.store.ensure_feature_set(spec)
        ref = VideoRef(spec.id, features.participant_id, features.video_id)
        n = features.n_frames
        if self.store.is_published(ref) and not overwrite:
            return WriteResult(spec.id, features.video_id, "skipped", n)
        with self.store.staging() as stage:
            built = stage / features.video_id
            self._build(built, features)
            outcome = self.store.commit(built, ref, overwrite=overwrite)
        return WriteResult(spec.id, features.video_id, outcome, n)

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
