"""Run several extractors on one video with a single decode.

Per decoded batch of frames ``(B, H, W, 3)``, in order:

1. **Face detection stage** (:class:`extractors.face_detect.FaceStage`): every frame
   extractor that reads faces is a :class:`extractors.face_detect.FaceConsumer`;
   consumers whose detectors have the same
   :attr:`~extractors.face_detect.FaceDetector.key` (model SHA-256 and every identity
   option of the detector) share one detection of the batch, run by the first of
   them. The result is a :class:`extractors.face_detect.FaceDetections`, a frozen
   dataclass of read-only arrays, one row per frame of the batch:
   ``boxes`` (B, 4) float32, ``landmarks`` (B, 10) float32, ``scores`` (B,) float32,
   ``found`` (B,) bool. Detectors with ``keyframe_stride`` > 1 detect keyframes on
   the whole frame and interpolate between them (:mod:`extractors.face_track`); the
   stage holds back the frames after the last keyframe seen until the next one
   arrives, so it hands out chunks of frames with their detections, not always
   the decoded batches.
2. Each frame extractor gets each chunk: a consumer through
   ``consume_faces(state, frames, faces)``, any other through
   ``consume(state, frames)``.

To read faces, a frame extractor subclasses ``FaceConsumer``, gives its config a
``detector: FaceDetectConfig`` field (``field(default_factory=FaceDetectConfig,
metadata=IDENTITY_FIELD)``), sets ``self.detector = FaceDetector(self.config.detector,
self.runtime)`` in ``__init__`` after ``super().__init__(config, runtime)``, and
implements ``consume_faces(state, frames, faces)``. Run alone it detects with its
own detector; in a pipeline it shares the stage's detection with every consumer of
the same detector key, so its outputs are the same either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from extractors.base import DecodedVideo, Extractor, FrameExtractor
from extractors.decode import decode_audio, open_video
from extractors.face_detect import DetectorKey, FaceConsumer, FaceDetections, FaceStage
from extractors.runtime import device_error, device_fault
from store.errors import BahfsError
from store.features import VideoFeatures


def extract_all(path: Path, extractors: list[Extractor], *, video_id: str = "",
                participant_id: str = "", batch: int = 32) -> list[VideoFeatures]:
    """Decode ``path`` once; return each extractor's validated output (extractors
    not loaded yet are loaded first, :meth:`Extractor.load`). A device failure (CUDA
    out of memory, a lost device) raises :class:`DeviceError`."""
    try:
        for e in extractors:
            e.load()
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
    stage = FaceStage(framers)

    def feed(chunks: Iterator[tuple[np.ndarray, dict[DetectorKey, FaceDetections]]]) -> None:
        for chunk, faces in chunks:
            for fx, st in zip(framers, states, strict=True):
                if isinstance(fx, FaceConsumer):
                    fx.consume_faces(st, chunk, faces[fx.detector.key])
                else:
                    fx.consume(st, chunk)

    for frames in stream:
        feed(stage.push(frames))
    feed(stage.flush())
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
