"""Convert MediaPipe's face-mesh, iris and body-pose TFLite models to ONNX.

Run by `.ci/setup.sh` (through `.ci/mediapipe.sh`) in the throwaway venv that has
tensorflow-cpu, tf2onnx and onnxruntime; bahfs itself never imports TensorFlow and
mediapipe is never installed: the ``.tflite`` files are read out of the pinned
``mediapipe==0.10.14`` wheel with :mod:`zipfile`, each checked against its SHA-256.

For each model (skipped when its ONNX file and sidecar are already there):

1. tf2onnx converts the TFLite file (opset 17);
2. the batch dimension is made dynamic: graph inputs and outputs get the symbolic
   batch ``N``, and every Reshape whose constant target shape starts with 1 gets 0
   there (copy the batch from the input); intermediate shape annotations are dropped;
3. ONNX Runtime is checked against ``tf.lite.Interpreter`` on 8 random inputs run as
   one batch (and the TFLite model one input at a time): the max abs difference per
   output is written to the sidecar ``<name>.json`` with the SHA-256s and versions.

Writes into OUT_DIR ``mp_face_landmark.onnx``, ``mp_iris_landmark.onnx`` and
``mp_pose_landmark_full.onnx``, each with its ``.json``.

    python mediapipe_to_onnx.py OUT_DIR MEDIAPIPE_WHEEL
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

WHEEL = "mediapipe==0.10.14"
#: name -> (member of the wheel, SHA-256 of the tflite file, outputs kept: ONNX name)
MODELS: dict[str, tuple[str, str, dict[str, str]]] = {
    "mp_face_landmark": (
        "mediapipe/modules/face_landmark/face_landmark.tflite",
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
        {"conv2d_21": "mesh", "conv2d_31": "face_flag"}),
    "mp_iris_landmark": (
        "mediapipe/modules/iris_landmark/iris_landmark.tflite",
        "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
        {"output_eyes_contours_and_brows": "contours", "output_iris": "iris"}),
    "mp_pose_landmark_full": (
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
        {"Identity": "landmarks", "Identity_1": "pose_flag"}),
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_batch_dynamic(model: Any) -> Any:
    """The graph with a symbolic batch ``N`` (see the module docstring)."""
    from onnx import numpy_helper

    graph = model.graph
    for value in (*graph.input, *graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = "N"
    del graph.value_info[:]
    consts = {init.name: init for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    consts[node.output[0]] = attr.t
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] not in consts:
            continue
        tensor = consts[node.input[1]]
        shape = numpy_helper.to_array(tensor)
        if shape.ndim == 1 and shape.size > 1 and shape[0] == 1:
            shape = shape.copy()
            shape[0] = 0
            tensor.CopyFrom(numpy_helper.from_array(shape.astype(np.int64), tensor.name))
    return model


def convert(name: str, wheel: Path, out_dir: Path) -> None:
    import onnx
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    member, want_sha, keep = MODELS[name]
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(member)
    if sha256(data) != want_sha:
        raise SystemExit(f"{wheel}: {member} has SHA-256 {sha256(data)}, expected {want_sha}")
    with tempfile.TemporaryDirectory() as tmp:
        tfl = Path(tmp) / Path(member).name
        tfl.write_bytes(data)
        model, _ = tf2onnx.convert.from_tflite(str(tfl), opset=17)
        interp = tf.lite.Interpreter(str(tfl))
        interp.allocate_tensors()
    model = make_batch_dynamic(model)
    for out in model.graph.output:  # the names bahfs reads
        if out.name in keep:
            for node in model.graph.node:
                node.output[:] = [keep[out.name] if o == out.name else o for o in node.output]
                node.input[:] = [keep[out.name] if i == out.name else i for i in node.input]
            out.name = keep[out.name]
    onnx.checker.check_model(model)
    onnx_path = out_dir / f"{name}.onnx"
    tmp_path = onnx_path.with_suffix(".onnx.tmp")
    onnx.save(model, str(tmp_path))

    inp = interp.get_input_details()[0]
    outs = {d["name"]: d["index"] for d in interp.get_output_details()}
    shape = tuple(int(s) for s in inp["shape"][1:])
    x = np.random.default_rng(0).uniform(0, 1, (8, *shape)).astype(np.float32)
    sess = ort.InferenceSession(str(tmp_path), providers=["CPUExecutionProvider"])
    got = dict(zip(keep.values(), sess.run(list(keep.values()), {sess.get_inputs()[0].name: x}),
                   strict=True))
    diffs: dict[str, float] = {}
    scale: dict[str, float] = {}
    for tfl_name, onnx_name in keep.items():
        ref = []
        for i in range(len(x)):
            interp.set_tensor(inp["index"], x[i:i + 1])
            interp.invoke()
            ref.append(interp.get_tensor(outs[tfl_name]).copy())
        want = np.concatenate(ref).reshape(len(x), -1)
        diffs[onnx_name] = float(np.abs(got[onnx_name].reshape(len(x), -1) - want).max())
        scale[onnx_name] = float(np.abs(want).max())
    tmp_path.replace(onnx_path)
    (out_dir / f"{name}.json").write_text(json.dumps({
        "source": f"{WHEEL} {member}", "source_sha256": want_sha,
        "onnx_sha256": sha256(onnx_path.read_bytes()), "input": sess.get_inputs()[0].name,
        "input_shape": ["N", *shape], "outputs": list(keep.values()),
        "max_abs_diff_vs_tflite": diffs, "max_abs_tflite_output": scale,
        "check": "8 uniform [0,1] inputs, batch 8 vs 1",
        "tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__,
        "onnxruntime": ort.__version__, "opset": 17}, indent=2))
    print(f"wrote {onnx_path} (max abs diff vs TFLite {diffs})")


def main(out_dir: Path, wheel: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in MODELS:
        if (out_dir / f"{name}.onnx").is_file() and (out_dir / f"{name}.json").is_file():
            print(f"{name}: already converted")
            continue
        convert(name, wheel, out_dir)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
