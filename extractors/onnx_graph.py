"""An ONNX model's inputs and outputs as its graph declares them, read with the
``onnx`` package (parsing the protobuf: no inference session is created), so that
what an extractor produces is known before any model runs.

Each tensor's shape is a tuple of dimensions as ONNX Runtime reports them: an
``int`` for a fixed size, a ``str`` for a named symbolic one, ``None`` for one with
neither; the shape itself is ``None`` when the graph does not declare the rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store.errors import ModelError

Dim = int | str | None


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[Dim, ...] | None


def _shape(value: Any) -> tuple[Dim, ...] | None:
    tensor = value.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                 for d in tensor.shape.dim)


def graph_io(path: Path) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    """(inputs, outputs) of the ONNX model at ``path``; inputs that are initializers
    (weights) are left out, as ONNX Runtime leaves them out."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # a protobuf decode error of any type
        raise ModelError(f"not an ONNX model: {exc}".splitlines()[0], path=path,
                         expected="an ONNX model file") from exc
    weights = {i.name for i in model.graph.initializer}
    inputs = tuple(Tensor(i.name, _shape(i)) for i in model.graph.input if i.name not in weights)
    outputs = tuple(Tensor(o.name, _shape(o)) for o in model.graph.output)
    if not outputs:
        raise ModelError("the ONNX graph has no outputs", path=path,
                         expected="an ONNX model file")
    return inputs, outputs
