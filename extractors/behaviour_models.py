"""MediaPipe's face mesh, iris and body-pose models as converted to ONNX at setup
(``extractors/convert/mediapipe_to_onnx.py``), on ONNX Runtime.

Each model is ``$BAHFS_MODELS/<name>.onnx`` with its sidecar ``<name>.json``; the
sidecar must name the pinned TFLite source (SHA-256 of the file inside the
``mediapipe==0.10.14`` wheel) and the ONNX file must match the SHA-256 the
conversion recorded. All three take a batch of NHWC RGB crops in [0, 1]:

* ``mp_face_landmark``: 192x192 face crop -> 468 points (x, y, z in crop pixels)
  and a face-presence logit;
* ``mp_iris_landmark``: 64x64 crop of an eye seen as a left eye (the other eye
  mirrored) -> 71 eye-contour points and 5 iris points (centre first);
* ``mp_pose_landmark_full``: 256x256 body crop -> 39 points x (x, y, z,
  visibility logit, presence logit), the first 33 the body, and a presence score.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from extractors.models import models_dir
from extractors.runtime import (
    DEFAULT_RUNTIME,
    Runtime,
    check_model,
    concat_outputs,
    in_halves,
    session,
)
from store.errors import ModelError

if TYPE_CHECKING:
    from extractors.batching import ModelServer

#: name -> SHA-256 of the TFLite file it was converted from
SOURCES = {
    "mp_face_landmark": "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
    "mp_iris_landmark": "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
    "mp_pose_landmark_full": "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
}
MESH_SIZE, IRIS_SIZE, POSE_SIZE = 192, 64, 256
_NOT_CONVERTED = ("run `bash .ci/setup.sh` (it converts MediaPipe's face mesh, iris and pose "
                  "models from the mediapipe==0.10.14 wheel to ONNX: .ci/mediapipe.sh)")


@dataclass
class LoadedModel:
    """A converted model, checked; ``sess`` once :meth:`open` created its session."""

    path: Path
    sha256: str
    meta: dict[str, Any]
    sess: Any = None

    def open(self, runtime: Runtime, server: ModelServer | None = None) -> None:
        """Its session on ``runtime`` (through ``server`` when given), once."""
        if self.sess is None:
            self.sess = session(self.path.read_bytes(), runtime, server)

    def run(self, outputs: list[str], x: np.ndarray) -> list[np.ndarray]:
        """``outputs`` for the rows of ``x``; when the device runs out of memory, in
        halves (:func:`extractors.runtime.in_halves`)."""
        def rows(part: slice) -> list[np.ndarray]:
            res = self.sess.run(outputs, {self.meta["input"]: np.ascontiguousarray(
                x[part], np.float32)})
            return [np.asarray(r, np.float32) for r in res]

        return in_halves(rows, len(x), concat_outputs, self.path.stem)


def load(name: str, folder: Path | None = None) -> LoadedModel:
    """One converted model, checked against its sidecar and pinned source (its session
    is made by :meth:`LoadedModel.open`)."""
    path = (folder or models_dir()) / f"{name}.onnx"
    side = path.with_suffix(".json")
    if not path.is_file() or not side.is_file():
        raise ModelError(f"the MediaPipe model {name} is not converted yet (setup has not "
                         "converted it)", path=path, expected=_NOT_CONVERTED)
    try:
        meta = json.loads(side.read_text())
    except ValueError as exc:
        raise ModelError(f"unreadable sidecar: {exc}", path=side,
                         expected="the JSON the conversion writes") from exc
    if meta.get("source_sha256") != SOURCES[name]:
        raise ModelError("the ONNX model was converted from unexpected weights", path=side,
                         expected=f"source_sha256 {SOURCES[name]}")
    sha = check_model(path, meta.get("onnx_sha256"))
    return LoadedModel(path, sha, meta)


class MediaPipeModels:
    """The three models, checked when made; :meth:`open` creates their sessions on
    ``runtime``."""

    def __init__(self, folder: Path | None = None, body: bool = True,
                 runtime: Runtime = DEFAULT_RUNTIME) -> None:
        self.runtime = runtime
        self.mesh_model = load("mp_face_landmark", folder)
        self.iris_model = load("mp_iris_landmark", folder)
        self.pose_model = load("mp_pose_landmark_full", folder) if body else None

    def open(self, server: ModelServer | None = None) -> None:
        """Every model's session (through ``server``, a model thread, when given)."""
        for model in self.loaded:
            model.open(self.runtime, server)

    @property
    def loaded(self) -> list[LoadedModel]:
        return [m for m in (self.mesh_model, self.iris_model, self.pose_model) if m]

    def mesh(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, 468, 3) points in crop pixels and (n,) face probability."""
        pts, flag = self.mesh_model.run(["mesh", "face_flag"], crops)
        return pts.reshape(len(crops), 468, 3), 1.0 / (1.0 + np.exp(-flag.reshape(-1)))

    def iris(self, crops: np.ndarray) -> np.ndarray:
        """(n, 5, 3) iris points (centre first) in crop pixels."""
        (pts,) = self.iris_model.run(["iris"], crops)
        return pts.reshape(len(crops), 5, 3)

    def pose(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(n, 33, 3) body points in crop pixels, (n, 33) visibility, (n,) presence."""
        if self.pose_model is None:
            raise ModelError("the body model was not loaded", expected="body=True")
        pts, flag = self.pose_model.run(["landmarks", "pose_flag"], crops)
        pts = pts.reshape(len(crops), 39, 5)[:, :33]
        vis = 1.0 / (1.0 + np.exp(-pts[:, :, 3]))
        return pts[:, :, :3], vis, flag.reshape(-1)
