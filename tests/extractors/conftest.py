"""Fixtures of the extractor tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper


def _tiny_face_model(path: Path, width: int | str = 4) -> Path:
    """A tiny ONNX face model at ``path``: (N, 1, 32, 32) grey crops -> (N, width),
    ``width`` fixed (an int) or symbolic (a name)."""
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"], axis=1),
         helper.make_node("MatMul", ["f", "w"], ["y"])], "tiny_face",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", width])],
        [numpy_helper.from_array(np.ones((1024, 4), np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.fixture
def tiny_face_model() -> Callable[..., Path]:
    """``tiny_face_model(path, width=4)`` writes a tiny real ONNX face model."""
    return _tiny_face_model
