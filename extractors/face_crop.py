"""Aligned face crops in the store: what CNN/ViT baselines train on, without video.

The top face of every frame (CenterFace, :mod:`extractors.face_detect`) aligned by
its 5 landmarks onto the ArcFace template scaled to ``size`` (112 by default, up to
the paper's 256). As in the official pipeline, a frame where no face is found
reuses the previous frame's crop (``carry_forward``); frames before the first face
are black. ``has_face`` says where a face was actually found.

Outputs per decoded frame: ``crop`` uint8 (size, size, 3) RGB, ``has_face`` bool.
The store keeps crops uncompressed (measured: ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from extractors.base import DecodedVideo, register
from extractors.face_detect import (
    FaceConsumer,
    FaceDetectConfig,
    FaceDetections,
    FaceDetector,
    align,
)
from extractors.identity import IDENTITY_FIELD, identity
from extractors.runtime import Runtime
from store.errors import ConfigError
from store.features import ArraySpec

if TYPE_CHECKING:
    from extractors.services import Services


@dataclass(frozen=True)
class FaceCropConfig:
    detector: FaceDetectConfig = field(default_factory=FaceDetectConfig,
                                       metadata=IDENTITY_FIELD)
    size: int = identity(112)  # crop side in pixels, 32..256 (the paper: 256)
    carry_forward: bool = identity(True)  # reuse the previous crop where no face is found


@register
class FaceCropExtractor(FaceConsumer):
    """The aligned crop of the main face of every frame."""

    name = "face_crop"
    Config = FaceCropConfig
    config: FaceCropConfig

    def __init__(self, config: FaceCropConfig | None = None,
                 runtime: Runtime | None = None) -> None:
        super().__init__(config, runtime)
        if not 32 <= self.config.size <= 256:
            raise ConfigError(f"face_crop: size {self.config.size}",
                              expected="a crop side from 32 to 256 pixels")
        self.detector = FaceDetector(self.config.detector, self.runtime)

    def _load(self, services: Services) -> None:
        self.detector.load(services)
        self.device = self.detector.device

    def model_files(self) -> tuple[Path, ...]:
        return self.detector.model_files()

    def model_sha256(self) -> str:
        return self.detector.model_sha256()

    def provenance(self) -> dict[str, Any]:
        return self.detector.provenance()

    def run_provenance(self) -> dict[str, Any]:
        return self.detector.run_provenance()

    def outputs(self) -> tuple[ArraySpec, ...]:
        s = self.config.size
        return (ArraySpec("crop", "uint8", (s, s, 3), "aligned face, RGB (carried forward "
                                                       "where no face)",
                          ("crop_y", "crop_x", "channel"), ((), (), ("red", "green", "blue"))),
                ArraySpec("has_face", "bool", (), "a face was found in this frame"))

    def consume_faces(self, state: dict[str, Any], frames: np.ndarray,
                      faces: FaceDetections) -> None:
        s = self.config.size
        crops = np.zeros((len(frames), s, s, 3), np.uint8)
        last = state.get("last")  # the latest crop of a found face, across batches
        for i, hit in enumerate(faces.found):
            if hit:
                crops[i] = last = align(frames[i], faces.landmarks[i], s)
            elif last is not None and self.config.carry_forward:
                crops[i] = last
        state["last"] = last
        state.setdefault("crops", []).append(crops)
        state.setdefault("found", []).append(faces.found)

    def finish_faces(self, state: dict[str, Any], video: DecodedVideo
                     ) -> dict[str, np.ndarray]:
        s = self.config.size
        if not state.get("crops"):
            return {"crop": np.zeros((0, s, s, 3), np.uint8), "has_face": np.zeros(0, bool)}
        return {"crop": np.concatenate(state["crops"]),
                "has_face": np.concatenate(state["found"])}
