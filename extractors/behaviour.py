"""Behaviour features per frame, named after what annotators code: head pose, gaze,
eyes, brows, mouth and upper body, from MediaPipe's face mesh, iris and body-pose
models on ONNX Runtime (:mod:`extractors.behaviour_models`).

Pipeline per decoded batch: the face detections (box, 5 landmarks, score per frame,
:class:`extractors.face_detect.FaceDetections`) come from the detection stage of
:mod:`extractors.pipeline` (CenterFace, detected once per batch for every face
feature set with the same detector options) into
:meth:`BehaviourExtractor.consume_faces`; run alone, the extractor detects with its
own detector. The face, turned upright
by its eye line, is cropped to 192x192 for the mesh; the mesh gives the head pose
(a scaled rotation fitted to a reference face, :func:`reference_face`), the face
measures (on the mesh with the head rotation undone) and two 64x64 eye crops for the
iris model; a body crop placed below the face goes to the pose model. Each model
runs once per batch on every face of it.

Units and signs (:mod:`extractors.behaviour_geometry`): degrees with yaw > 0 the
person turning to their left, pitch > 0 up, roll > 0 toward their left shoulder;
"iod" is the distance between the outer eye corners (face size). Every array is
zero where its mask (``has_face``, ``has_body``) is false.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

import extractors.behaviour_geometry as geo
from extractors.base import DecodedVideo, register
from extractors.behaviour_models import IRIS_SIZE, MESH_SIZE, POSE_SIZE, MediaPipeModels
from extractors.face_detect import FaceConsumer, FaceDetectConfig, FaceDetections, FaceDetector
from extractors.identity import IDENTITY_FIELD, identity, run_option
from extractors.runtime import Runtime
from store.errors import ConfigError, ModelError
from store.features import ArraySpec

if TYPE_CHECKING:
    from extractors.services import Services

#: name -> (dtype, shape, unit and meaning; the cues it serves)
ARRAYS: dict[str, tuple[str, tuple[int, ...], str]] = {
    "head_pose": ("float32", (3,), "yaw, pitch, roll, degrees (yaw > 0: turns to own left; "
                  "pitch > 0: up; roll > 0: toward left shoulder); Look away, Tilt, Nod, Shake"),
    "head_motion": ("float32", (3,), "change of yaw, pitch, roll, degrees per second; "
                    "Nod, Shake, Restless"),
    "gaze": ("float32", (2,), "gaze direction yaw, pitch, degrees: head pose plus eye-in-head "
             "angle (eyeball radius 0.42 eye widths), same signs as head_pose; Gaze, "
             "Look away, Eye roll"),
    "gaze_left": ("float32", (2,), "left-eye iris offset from the eye centre, eye widths "
                  "(x > 0 toward the image's right, y > 0 up); Gaze, Eye roll"),
    "gaze_right": ("float32", (2,), "right-eye iris offset, as gaze_left; Gaze, Eye roll"),
    "eye_open": ("float32", (2,), "left, right eyelid gap over eye width (ratio); "
                 "Close 1, Close 2, Squint, Open"),
    "brow_raise": ("float32", (2,), "left, right brow height over the eye, iod; "
                   "Eyebrow, Frown, Open"),
    "mouth_open": ("float32", (), "inner-lip gap, iod; Mouth, Hanging, Open"),
    "smile": ("float32", (2,), "lip-corner lift over the lip centre, iod (> 0 corners up); "
              "mouth width, iod; Smile"),
    "lip_press": ("float32", (), "1 - red-lip height over the reference face's (> 0 lips "
                  "thinner, pressed); Lip press, Pout"),
    "has_face": ("bool", (), "a face detected and confirmed by the mesh model"),
    "shoulder_tilt": ("float32", (), "shoulder line angle, degrees (> 0: left shoulder "
                      "lower); Tilt, Posture"),
    "shrug": ("float32", (), "shoulder-line height over the face centre, face heights "
              "(larger: shoulders raised); Shrug"),
    "hands_near_face": ("float32", (2,), "left, right hand proximity to the face centre "
                        "(1 at it, 0 at two face heights or hand unseen); Hands, Scratch"),
    "body_motion": ("float32", (), "mean speed of the visible upper-body points, face "
                    "heights per second; Restless, Throw, Posture"),
    "has_body": ("bool", (), "the pose model finds a body with both shoulders visible"),
}
_BODY = ("shoulder_tilt", "shrug", "hands_near_face", "body_motion", "has_body")
#: What `bahfs cues evaluate` reads from the provenance (store/cue_eval.py).
COLUMNS = {"head_pose": ["yaw", "pitch", "roll"], "head_motion": ["yaw", "pitch", "roll"],
           "gaze": ["yaw", "pitch"], "gaze_left": ["x", "y"], "gaze_right": ["x", "y"],
           "eye_open": ["left", "right"], "brow_raise": ["left", "right"],
           "smile": ["lift", "width"], "hands_near_face": ["left", "right"]}
SIGNED = ["head_pose", "head_motion", "gaze", "gaze_left", "gaze_right", "shoulder_tilt"]


@dataclass(frozen=True)
class BehaviourConfig:
    detector: FaceDetectConfig = field(default_factory=FaceDetectConfig,
                                       metadata=IDENTITY_FIELD)
    batch: int = run_option(16)  # frames per model run
    face_scale: float = identity(1.6)  # mesh crop side over the detector box's longer side
    body: bool = identity(True)  # run the body-pose model
    body_offset: float = identity(2.2)  # body crop centre below the face centre, face heights
    body_scale: float = identity(6.0)  # body crop side, face heights
    mesh: bool = identity(False)  # also store the 468-point mesh (frame pixels)


@lru_cache(maxsize=4)
def _astronaut() -> np.ndarray:
    from skimage import data

    return np.asarray(data.astronaut())  # type: ignore[no-untyped-call]


@register
class BehaviourExtractor(FaceConsumer):
    """Head pose, gaze, eye, brow, mouth and upper-body measures per frame."""

    name = "behaviour"
    Config = BehaviourConfig
    config: BehaviourConfig

    def __init__(self, config: BehaviourConfig | None = None,
                 runtime: Runtime | None = None) -> None:
        super().__init__(config, runtime)
        if self.config.batch < 1 or self.config.face_scale <= 0 or self.config.body_scale <= 0:
            raise ConfigError("behaviour: batch, face_scale and body_scale must be positive",
                              expected="BehaviourConfig(batch>=1, face_scale>0, body_scale>0)")
        self.detector = FaceDetector(self.config.detector, self.runtime)
        self.models = MediaPipeModels(body=self.config.body, runtime=self.runtime)
        self._reference: np.ndarray | None = None

    def _load(self, services: Services) -> None:
        self.detector.load(services)
        self.models.open(services.server)
        self.device = self.detector.device
        self._reference = self.reference_face()

    @property
    def reference(self) -> np.ndarray:
        """(468, 3) the head pose's reference face (:meth:`reference_face`), made when
        the models are loaded."""
        self.load()
        if self._reference is None:  # pragma: no cover - load() sets it or raises
            raise ModelError("the behaviour models are not loaded", expected="load()")
        return self._reference

    def model_files(self) -> tuple[Path, ...]:
        return (*self.detector.model_files(), *(m.path for m in self.models.loaded))

    def run_provenance(self) -> dict[str, Any]:
        return self.detector.run_provenance()

    def reference_face(self) -> np.ndarray:
        """(468, 3) the reference face of the head pose: the mesh model's own output on
        scikit-image's astronaut photograph, made left-right symmetric
        (:func:`extractors.behaviour_geometry.symmetric_reference`)."""
        img = _astronaut()
        faces = self.detector.detections(img[None])
        if not faces.found[0]:
            raise ModelError("the face detector finds no face on the reference photograph",
                             expected="CenterFace finds scikit-image's astronaut")
        mesh, _ = self._mesh(img[None], faces, np.array([0]))
        return geo.symmetric_reference(mesh[0])

    def model_sha256(self) -> str:
        return "+".join([self.detector.model_sha256(), *(m.sha256 for m in self.models.loaded)])

    def provenance(self) -> dict[str, Any]:
        masks = {n: "has_body" if n in _BODY else "has_face" for n in ARRAYS
                 if n not in ("has_face", "has_body")}
        return {**self.detector.provenance(), "columns": COLUMNS, "signed": SIGNED,
                "masks": {**masks, "mesh": "has_face"},
                "models": {m.path.stem: {k: m.meta.get(k) for k in
                                         ("source", "onnx_sha256", "max_abs_diff_vs_tflite")}
                           for m in self.models.loaded}}

    def outputs(self) -> tuple[ArraySpec, ...]:
        names = [n for n in ARRAYS if self.config.body or n not in _BODY]
        out = [ArraySpec(n, ARRAYS[n][0], ARRAYS[n][1], ARRAYS[n][2],
                         labels=(tuple(COLUMNS[n]),) if n in COLUMNS else ()) for n in names]
        if self.config.mesh:
            out.append(ArraySpec("mesh", "float32", (468, 3),
                                 "face mesh x, y, depth z, frame pixels",
                                 ("mesh_point", "xyz"), ((), ("x", "y", "z"))))
        return tuple(out)

    def consume_faces(self, state: dict[str, Any], frames: np.ndarray,
                      faces: FaceDetections) -> None:
        b = self.config.batch
        for start in range(0, frames.shape[0], b):
            state.setdefault("parts", []).append(
                self.measure(frames[start:start + b], faces[start:start + b]))

    def _mesh(self, frames: np.ndarray, faces: FaceDetections, idx: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        box, marks = faces.boxes[idx], faces.landmarks[idx]
        size = self.config.face_scale * np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1])
        angle = np.arctan2(marks[:, 3] - marks[:, 1], marks[:, 2] - marks[:, 0])
        mats = geo.roi_matrix((box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2,
                              size, angle, MESH_SIZE)
        pts, flag = self.models.mesh(geo.crop(frames, idx, mats, MESH_SIZE))
        return geo.to_frame(pts, mats, MESH_SIZE), flag

    def _iris(self, frames: np.ndarray, idx: np.ndarray, mesh: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """Iris centres (n, 2) in frame pixels for the image-left and -right eyes."""
        centres = []
        for a, b, flip in ((geo.R_OUT, geo.R_IN, False), (geo.L_IN, geo.L_OUT, True)):
            pa, pb = mesh[:, a, :2], mesh[:, b, :2]
            c = (pa + pb) / 2
            size = 2.3 * np.linalg.norm(pb - pa, axis=1)
            angle = np.arctan2(pb[:, 1] - pa[:, 1], pb[:, 0] - pa[:, 0])
            mats = geo.roi_matrix(c[:, 0], c[:, 1], size, angle, IRIS_SIZE)
            flips = np.full(len(idx), flip)
            iris = self.models.iris(geo.crop(frames, idx, mats, IRIS_SIZE, flips))
            centres.append(geo.to_frame(iris[:, :1, :2], mats, IRIS_SIZE, flips)[:, 0])
        return centres[0], centres[1]

    def measure(self, frames: np.ndarray, faces: FaceDetections) -> dict[str, np.ndarray]:
        """Every per-frame array of one batch given its face detections (the motion
        arrays are filled in :meth:`finish`, across batches)."""
        n = len(frames)
        out = {name: np.zeros((n, *shape), dtype) for name, (dtype, shape, _) in ARRAYS.items()}
        out["mesh"] = np.zeros((n, 468, 3), np.float32)
        out["body_points"] = np.zeros((n, len(geo.UPPER_BODY), 2), np.float32)
        out["body_visible"] = np.zeros((n, len(geo.UPPER_BODY)), bool)
        out["face_h"] = np.zeros(n, np.float32)
        idx = np.flatnonzero(faces.found)
        if len(idx) == 0:
            return out
        mesh, flag = self._mesh(frames, faces, idx)
        keep = flag > 0.5
        idx, mesh = idx[keep], mesh[keep]
        if len(idx) == 0:
            return out
        scale, rot, t = geo.umeyama(self.reference, mesh)
        pose = geo.euler(rot)
        front = np.einsum("nki,nij->nkj", mesh - t[:, None], rot) / scale[:, None, None]
        for name, value in geo.face_measures(front, self.reference).items():
            out[name][idx] = value
        iris_r, iris_l = self._iris(frames, idx, mesh)
        off_l = geo.eye_offsets(mesh, iris_l, geo.L_IN, geo.L_OUT, geo.L_UP, geo.L_LOW)
        off_r = geo.eye_offsets(mesh, iris_r, geo.R_IN, geo.R_OUT, geo.R_UP, geo.R_LOW)
        eyes = geo.gaze_angles((off_l + off_r) / 2)
        out["head_pose"][idx] = pose
        out["gaze"][idx] = pose[:, :2] + eyes
        out["gaze_left"][idx], out["gaze_right"][idx] = off_l, off_r
        out["has_face"][idx] = True
        out["mesh"][idx] = mesh
        box = faces.boxes[idx]
        face_h = box[:, 3] - box[:, 1]
        out["face_h"][idx] = face_h
        if self.config.body:
            self._body(frames, idx, box, out)
        return out

    def _body(self, frames: np.ndarray, idx: np.ndarray, box: np.ndarray,
              out: dict[str, np.ndarray]) -> None:
        face_h = box[:, 3] - box[:, 1]
        cx, cy = (box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2
        mats = geo.roi_matrix(cx, cy + self.config.body_offset * face_h,
                              self.config.body_scale * face_h, np.zeros(len(idx)), POSE_SIZE)
        pts, vis, presence = self.models.pose(geo.crop(frames, idx, mats, POSE_SIZE))
        pts = geo.to_frame(pts, mats, POSE_SIZE)
        seen = vis > 0.5
        body = (presence > 0.5) & seen[:, geo.L_SHOULDER] & seen[:, geo.R_SHOULDER]
        measures = geo.body_measures(pts, seen, cy, face_h, np.stack([cx, cy], 1))
        j = idx[body]
        for name, value in measures.items():
            out[name][j] = value[body]
        out["has_body"][j] = True
        out["body_points"][j] = pts[body][:, list(geo.UPPER_BODY), :2]
        out["body_visible"][j] = seen[body][:, list(geo.UPPER_BODY)]

    def finish_faces(self, state: dict[str, Any], video: DecodedVideo
                     ) -> dict[str, np.ndarray]:
        parts = state.get("parts", [])
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else \
            self.measure(np.zeros((0, 2, 2, 3), np.uint8), FaceDetections.concat([]))
        t = video.timestamps.astype(np.float64)
        cols["head_motion"] = geo.per_second(cols["head_pose"], t, cols["has_face"])
        speed = geo.per_second(cols["body_points"], t, cols["has_body"])
        vis = cols["body_visible"]
        both = vis.copy()
        both[1:] &= vis[:-1]
        dist = np.linalg.norm(speed, axis=2) / np.maximum(cols["face_h"], 1e-6)[:, None]
        moving = np.where(both, dist, 0.0).sum(1) / np.maximum(both.sum(1), 1)
        cols["body_motion"] = np.where(cols["has_body"], moving, 0.0).astype(np.float32)
        return {s.name: cols[s.name].astype(s.dtype) for s in self.outputs()}
