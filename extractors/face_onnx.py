"""Any ONNX image model that takes an aligned face crop, by path.

What the model needs is read from the model itself, and from an optional sidecar
``<model>.json`` (:class:`FaceModelSpec`) for what a model file cannot say:

* input: the model's only image input (or ``input``), rank 4; layout NCHW or NHWC
  from where the 1- or 3-channel axis is (or ``layout``); size from its fixed
  height and width (or ``size`` when they are dynamic);
* pixels: RGB for 3 channels, grey for 1 (or ``color``: ``rgb``, ``bgr``,
  ``gray``), scaled to [0, 1], then ``(x - mean) / std`` per channel (default mean
  0, std 1: give the values the model was trained with);
* outputs: every ``(batch, width)`` output (or ``outputs``: stored array name ->
  ONNX output name), its width read from the graph's declared output shape; where
  the graph leaves a width symbolic, ``widths`` (stored array name -> width) gives
  it; ``axes`` names an output's column axis (array name -> axis name, default
  ``<array>_component``) and ``labels`` its columns (array name -> one name per column);
* ``sha256``: when given, the model file must match it.

All of this is read from the ONNX graph with the ``onnx`` package
(:mod:`extractors.onnx_graph`), without an inference session, so the feature set
and its id are known on a host that never runs the model. :meth:`FaceModel.load`
creates the session and runs the model once on a batch of two blank crops: every
output must come back ``(2, width)`` with the width declared.

A model that cannot be used (no rank-4 input, no channel axis, a dynamic size and
no ``size``, a missing or non-``(batch, width)`` output, a symbolic width and no
``widths``) raises :class:`store.errors.ModelError` naming the file and what was
expected, when the extractor is built; one whose outputs differ from what it
declares, when it is loaded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from extractors.face_detect import align
from extractors.onnx_graph import Dim, Tensor, graph_io
from extractors.runtime import Runtime, check_model, session
from store.errors import BahfsError, ModelError

if TYPE_CHECKING:
    from extractors.batching import ModelServer

_ARRAY_NAME = re.compile(r"[^a-z0-9_]+")


class FaceModelSpec(BaseModel):
    """The sidecar ``<model>.json``: every key optional (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: str | None = None
    layout: Literal["nchw", "nhwc"] | None = None
    size: int | None = None
    color: Literal["rgb", "bgr", "gray"] | None = None
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    outputs: dict[str, str] | None = None
    widths: dict[str, int] = {}
    docs: dict[str, str] = {}
    axes: dict[str, str] = {}
    labels: dict[str, tuple[str, ...]] = {}
    sha256: str | None = None


@dataclass(frozen=True)
class FaceOutput:
    name: str  # stored array name
    onnx_name: str
    width: int
    doc: str
    axis: str = ""  # the column axis's name; empty: the store's default
    labels: tuple[str, ...] = ()  # one name per column, or none


def array_name(onnx_name: str) -> str:
    """An ONNX output name as a stored array name (``[a-z][a-z0-9_]*``)."""
    name = _ARRAY_NAME.sub("_", onnx_name.lower()).strip("_") or "output"
    return name if name[0].isalpha() else f"out_{name}"


def read_spec(path: Path) -> FaceModelSpec:
    """The sidecar beside ``path`` (``<stem>.json``), or all defaults without one."""
    side = path.with_suffix(".json")
    if not side.is_file():
        return FaceModelSpec()
    try:
        return FaceModelSpec.model_validate(json.loads(side.read_text()))
    except (ValueError, ValidationError) as exc:
        raise ModelError(f"unreadable face model sidecar: {exc}".splitlines()[0], path=side,
                         expected="JSON with keys among " + ", ".join(
                             FaceModelSpec.model_fields)) from exc


class FaceModel:
    """An ONNX face model: what it reads and produces from its graph and sidecar
    (no session); :meth:`load` makes it ready to embed aligned crops."""

    def __init__(self, path: Path, spec: FaceModelSpec, reserved: tuple[str, ...] = (),
                 runtime: Runtime | None = None) -> None:
        self.path, self.spec = Path(path), spec
        self.runtime = runtime or Runtime()
        self.sha256 = check_model(self.path, spec.sha256)
        inputs, outputs = graph_io(self.path)
        self._input(inputs)
        self.outputs = self._outputs(outputs, reserved)
        self._sess: Any = None

    def load(self, server: ModelServer | None = None) -> None:
        """The session on the runtime's device (through ``server`` when given), checked
        once on two blank crops against the declared outputs."""
        if self._sess is not None:
            return
        try:
            sess: Any = session(self.path.read_bytes(), self.runtime, server)
        except BahfsError:  # a DeviceError stays one: the device's fault, not the model's
            raise
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"ONNX Runtime cannot load it: {exc}".splitlines()[0],
                             path=self.path, expected="an ONNX model file") from exc
        crops = np.zeros((2, self.height, self.width, 3), np.uint8)
        got = sess.run([o.onnx_name for o in self.outputs], {self.input: self.prepare(crops)})
        for o, res in zip(self.outputs, got, strict=True):
            if np.shape(res) != (2, o.width):
                raise self._fail(f"output {o.onnx_name!r} has shape {list(np.shape(res))} "
                                 f"for a batch of 2", f"(2, {o.width}) as the model declares")
        self._sess = sess

    @property
    def sess(self) -> Any:
        """The model's session (loaded on first use)."""
        self.load()
        return self._sess

    def _fail(self, what: str, expected: str) -> ModelError:
        return ModelError(what, path=self.path, expected=expected)

    def _input(self, graph_inputs: tuple[Tensor, ...]) -> None:
        inputs = {i.name: i for i in graph_inputs}
        name = self.spec.input or (next(iter(inputs)) if len(inputs) == 1 else None)
        if name is None or name not in inputs:
            raise self._fail(f"inputs {sorted(inputs)}",
                             "one image input, or `input` in the sidecar naming it")
        shape = list(inputs[name].shape or ())
        if len(shape) != 4:
            raise self._fail(f"input {name!r} has rank {len(shape)} ({shape})",
                             "an image batch of rank 4: (batch, C, H, W) or (batch, H, W, C)")
        layout = self.spec.layout or ("nchw" if shape[1] in (1, 3) else
                                      "nhwc" if shape[3] in (1, 3) else None)
        if layout is None:
            raise self._fail(f"input {name!r} {shape} has no 1- or 3-channel axis",
                             "C = 1 or 3 at axis 1 or 3, or `layout` in the sidecar")
        c, h, w = (shape[1], shape[2], shape[3]) if layout == "nchw" else \
            (shape[3], shape[1], shape[2])
        fixed = isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0
        if not fixed and not self.spec.size:
            raise self._fail(f"input {name!r} {shape} has no fixed height and width",
                             "`size` in the sidecar")
        self.input, self.layout = name, layout
        side = int(self.spec.size or 0)
        self.height, self.width = (int(h), int(w)) if fixed else (side, side)  # type: ignore[arg-type]
        color = self.spec.color or ("gray" if c == 1 else "rgb")
        if (c == 1) != (color == "gray"):
            raise self._fail(f"{c} input channels but color {color!r}",
                             "gray for 1 channel, rgb or bgr for 3")
        self.color = color

    def _outputs(self, graph_outputs: tuple[Tensor, ...], reserved: tuple[str, ...]
                 ) -> tuple[FaceOutput, ...]:
        shapes = {o.name: o.shape for o in graph_outputs}
        names = list(shapes)
        wanted = self.spec.outputs or {array_name(n): n for n in names}
        missing = [o for o in wanted.values() if o not in names]
        if missing:
            raise self._fail(f"no output {missing[0]!r} (outputs: {names})",
                             "the outputs the sidecar names")
        out = []
        for array, onnx_name in wanted.items():
            shape = shapes[onnx_name]
            if shape is None and self.spec.outputs is not None:
                shape = (None, None)  # named but undeclared: its width must be given
            if shape is None:
                raise self._fail(f"output {onnx_name!r} has no declared shape",
                                 "`outputs` (and `widths`) in the sidecar naming the "
                                 "(batch, width) outputs to store")
            if shape is None or len(shape) != 2 or isinstance(shape[0], int):
                if self.spec.outputs is None and shape is not None and len(shape) != 2:
                    continue  # feature maps etc.: only (batch, width) outputs are stored
                raise self._fail(f"output {onnx_name!r} has shape {_shown(shape)}",
                                 "(batch, width) with a dynamic batch")
            if array in reserved or array != array_name(array):
                raise self._fail(f"output array name {array!r}",
                                 f"[a-z][a-z0-9_]*, not one of {reserved}")
            width = self._width(array, onnx_name, shape[1])
            labels = tuple(self.spec.labels.get(array, ()))
            if labels and len(labels) != width:
                raise self._fail(f"{len(labels)} labels for output {onnx_name!r} of width "
                                 f"{width}", "one label per column")
            out.append(FaceOutput(array, onnx_name, width,
                                  self.spec.docs.get(array, f"{onnx_name} of {self.path.name}"),
                                  self.spec.axes.get(array, ""), labels))
        if not out:
            raise self._fail(f"no (batch, width) output among {names}",
                             "at least one (batch, width) output")
        return tuple(out)

    def _width(self, array: str, onnx_name: str, declared: Dim) -> int:
        """The width the graph declares, else the sidecar's ``widths``."""
        if isinstance(declared, int) and declared > 0:
            given = self.spec.widths.get(array)
            if given is not None and given != declared:
                raise self._fail(f"sidecar width {given} for {array!r}, the graph declares "
                                 f"{declared}", "the width the model declares")
            return declared
        if array in self.spec.widths and self.spec.widths[array] > 0:
            return int(self.spec.widths[array])
        raise self._fail(f"output {onnx_name!r} has a symbolic width ({declared!r})",
                         f"its width in the sidecar: \"widths\": {{\"{array}\": N}}")

    def prepare(self, crops: np.ndarray) -> np.ndarray:
        """RGB uint8 crops ``(B, H, W, 3)`` as the model's input tensor."""
        x = crops
        if self.color == "gray":
            x = np.stack([cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in x])[..., None]
        elif self.color == "bgr":
            x = x[..., ::-1]
        mean = np.asarray(self.spec.mean, np.float32)
        std = np.asarray(self.spec.std, np.float32)
        y = (x.astype(np.float32) / 255.0 - mean) / std
        if self.layout == "nchw":
            y = y.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(y, np.float32)

    def crop(self, frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The aligned face at the model's input size (RGB uint8)."""
        side = max(self.height, self.width)
        face = align(frame, landmarks, side)
        if (self.height, self.width) != (side, side):
            face = cv2.resize(face, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return face

    def run(self, frames: np.ndarray, landmarks: np.ndarray) -> list[np.ndarray]:
        """Each output, ``(B, width)`` float32, for the faces of ``frames``."""
        crops = np.stack([self.crop(f, m) for f, m in zip(frames, landmarks, strict=True)])
        res = self.sess.run([o.onnx_name for o in self.outputs],
                             {self.input: self.prepare(crops)})
        return [np.asarray(r, np.float32) for r in res]

    def provenance(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "input": self.input,
                "layout": self.layout, "size": [self.height, self.width], "color": self.color,
                "mean": list(self.spec.mean), "std": list(self.spec.std),
                "outputs": {o.name: [o.onnx_name, o.width] for o in self.outputs}}


def _shown(shape: tuple[Dim, ...] | None) -> str:
    return "undeclared" if shape is None else str(list(shape))
