"""Run several extractors on one video with a single decode, and the standalone
``bahfs extract-video`` output."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from extractors.base import DecodedVideo, Extractor, FrameExtractor
from extractors.decode import decode_audio, open_video
from extractors.plan import Plan
from extractors.runtime import device_error, device_fault
from store.errors import BahfsError
from store.features import VideoFeatures


@lru_cache(maxsize=8)
def shared_extractors(plan: Plan) -> tuple[Extractor, ...]:
    """The plan's extractors, built (models loaded and checked) once per process: a
    Dask worker reuses them for every video it runs.
    ``shared_extractors.cache_info().misses`` counts the loads."""
    return tuple(e.build() for e in plan)


def extract_all(path: Path, extractors: list[Extractor], *, video_id: str = "",
                participant_id: str = "", batch: int = 32) -> list[VideoFeatures]:
    """Decode ``path`` once; return each extractor's validated output. A device
    failure (CUDA out of memory, a lost device) raises :class:`DeviceError`."""
    try:
        return _extract_all(Path(path), extractors, video_id, participant_id, batch)
    except BahfsError:
        raise
    except Exception as exc:
        if device_fault(exc):
            raise device_error(exc, path, participant_id or None, video_id or None) from exc
        raise


def _extract_all(path: Path, extractors: list[Extractor], video_id: str,
                 participant_id: str, batch: int) -> list[VideoFeatures]:
    stream = open_video(path, batch=batch)
    framers = [e for e in extractors if isinstance(e, FrameExtractor)]
    states: list[dict[str, Any]] = [{} for _ in framers]
    for frames in stream:
        for fx, st in zip(framers, states, strict=True):
            fx.consume(st, frames)
    video = DecodedVideo(path, video_id or path.stem, participant_id or "unknown",
                         stream.info, np.asarray(stream.timestamps, np.float64),
                         decode_audio(path, stream.info))
    finished = {id(fx): fx.finish(st, video) for fx, st in zip(framers, states, strict=True)}
    out = []
    for e in extractors:
        if id(e) in finished:
            out.append(e.features(video, finished[id(e)]))
        else:
            out.append(e.extract(video))
    return out


def write_standalone(out: Path, features: list[VideoFeatures], source: Path) -> Path:
    """One Zarr group for one video: ``<extractor>/<array>``, every array with the
    decoded frame count as first dimension; provenance and the transcript in the
    attributes, and the same beside it in ``OUT.json``."""
    root = zarr.open_group(str(out), mode="w", zarr_format=3)
    n = features[0].n_frames
    root.create_array("timestamps", data=features[0].timestamps, dimension_names=("frame",))
    for f in features:
        g = root.create_group(f.spec.label, attributes=f.spec.to_attrs())
        for name, arr in f.arrays.items():
            dims = ("frame", *(f"{name}_{i}" for i in range(1, arr.ndim)))
            g.create_array(name, data=arr, dimension_names=dims)
    root.attrs.update({"source": str(source), "n_frames": n,
                       "extractors": [f.spec.id for f in features],
                       **{k: v for f in features for k, v in f.attrs.items()}})
    extras = {k: json.loads(v) if k == "transcript" else v
              for f in features for k, v in f.attrs.items()}
    (Path(out).with_suffix(".json")).write_text(json.dumps(
        {"source": str(source), "n_frames": n,
         "feature_sets": {f.spec.label: f.spec.to_attrs() for f in features}, **extras},
        indent=2, default=str))
    return out
