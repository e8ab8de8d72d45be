"""The model thread (extractors.batching): calls of several threads gathered into one
ONNX Runtime call, each thread's rows given back, a failing batch retried request by
request so that the fault lands on the request that causes it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from extractors.batching import BatchedSession, ModelServer
from extractors.runtime import device_fault


def _session(nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto],
             outputs: list[onnx.ValueInfoProto],
             inits: list[onnx.TensorProto] = ()) -> Any:  # type: ignore[assignment]
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _gather(batch: int | str = "N") -> Any:
    """Rows of a (10, 3) table picked by index: an index past 9 fails the whole call
    (ONNX Runtime checks indices), a real per-row input fault."""
    table = helper.make_tensor("table", TensorProto.FLOAT, [10, 3],
                               np.arange(30, dtype=np.float32).tolist())
    return _session([helper.make_node("Gather", ["table", "idx"], ["rows"], axis=0),
                     helper.make_node("ReduceSum", ["rows"], ["total"], keepdims=0)],
                    [helper.make_tensor_value_info("idx", TensorProto.INT64, [batch])],
                    [helper.make_tensor_value_info("rows", TensorProto.FLOAT, [batch, 3]),
                     helper.make_tensor_value_info("total", TensorProto.FLOAT, [])],
                    [table])


def _conv() -> Any:
    """A 3x3 convolution and a ReLU over (N, 3, 16, 16) images."""
    rng = np.random.default_rng(0)
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3],
                           rng.normal(size=(4, 3, 3, 3)).astype(np.float32).ravel().tolist())
    return _session([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                     helper.make_node("Relu", ["c"], ["y"])],
                    [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
                    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 16, 16])],
                    [w])


def _in_threads(server: ModelServer, calls: list[Callable[[], Any]]) -> list[Any]:
    """Each call in its own thread, registered as a video in flight; results or the
    exceptions raised, in order."""
    out: list[Any] = [None] * len(calls)
    all_in = threading.Barrier(len(calls))

    def one(i: int) -> None:
        with server.video():
            all_in.wait()  # every video in flight before the first call
            try:
                out[i] = calls[i]()
            except Exception as exc:
                out[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_rows_of_several_threads_share_one_call_and_come_back_identical() -> None:
    sess = _conv()
    server = ModelServer(max_rows=64, max_wait_s=5.0)  # waits until all three wait
    batched = BatchedSession(sess, server)
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=(n, 3, 16, 16)).astype(np.float32) for n in (5, 16, 1)]
    got = _in_threads(server, [lambda x=x: batched.run(["y"], {"x": x}) for x in xs])
    assert server.stats.calls == 1 and server.stats.rows == 22 and server.stats.requests == 3
    for x, (y,) in zip(xs, got, strict=True):
        np.testing.assert_array_equal(y, sess.run(["y"], {"x": x})[0])
    assert server.stats.occupancy == pytest.approx(22 / 64)
    assert 0.0 <= server.stats.idle <= 1.0


def test_a_call_never_exceeds_max_rows_and_a_lone_video_does_not_wait() -> None:
    sess = _conv()
    server = ModelServer(max_rows=8, max_wait_s=5.0)
    batched = BatchedSession(sess, server)
    x = np.ones((6, 3, 16, 16), np.float32)
    got = _in_threads(server, [lambda: batched.run(["y"], {"x": x})] * 3)
    assert server.stats.calls == 3 and server.stats.rows == 18  # 6 + 6 > 8: one each
    assert all(np.array_equal(g[0], got[0][0]) for g in got)
    with server.video():  # one video in flight: no wait for others (5 s would fail this)
        import time

        t0 = time.perf_counter()
        batched.run(["y"], {"x": x})
        assert time.perf_counter() - t0 < 2.0


def test_a_bad_request_fails_alone_and_the_others_in_its_batch_get_their_rows() -> None:
    sess = _gather()
    server = ModelServer(max_rows=32, max_wait_s=5.0)
    batched = BatchedSession(sess, server)
    good = np.array([0, 3, 9], np.int64)
    bad = np.array([1, 42], np.int64)  # index 42 of a 10-row table
    other = np.array([2], np.int64)
    got = _in_threads(server, [lambda: batched.run(["rows"], {"idx": good}),
                               lambda: batched.run(["rows"], {"idx": bad}),
                               lambda: batched.run(["rows"], {"idx": other})])
    assert isinstance(got[1], Exception) and "out of data bounds" in str(got[1])
    assert not device_fault(got[1])  # the input's fault, as flows/job.py will classify it
    np.testing.assert_array_equal(got[0][0], sess.run(["rows"], {"idx": good})[0])
    np.testing.assert_array_equal(got[2][0], sess.run(["rows"], {"idx": other})[0])
    assert server.stats.retried_alone == 3 and server.stats.calls == 4  # 1 batch + 3 alone
    with pytest.raises(Exception, match="out of data bounds"):  # the thread lives on
        batched.run(["rows"], {"idx": bad})


def test_outputs_not_row_aligned_and_fixed_batches_run_alone() -> None:
    sess = _gather()
    server = ModelServer(max_rows=32, max_wait_s=5.0)
    batched = BatchedSession(sess, server)
    idx = [np.array([1, 2], np.int64), np.array([3], np.int64)]
    got = _in_threads(server, [lambda i=i: batched.run(["rows", "total"], {"idx": i})
                               for i in idx])
    for i, (rows, total) in zip(idx, got, strict=True):  # "total" is a scalar
        np.testing.assert_array_equal(rows, sess.run(["rows"], {"idx": i})[0])
        assert total == pytest.approx(float(sess.run(["total"], {"idx": i})[0]))
    fixed = BatchedSession(_gather(batch=2), server)
    server.reset_stats()
    two = np.array([1, 2], np.int64)
    got = _in_threads(server, [lambda: fixed.run(["rows"], {"idx": two})] * 2)
    assert server.stats.calls == 2 and all(g[0].shape == (2, 3) for g in got)
    assert fixed.get_inputs()[0].name == "idx"  # the session's own attributes


class _SmallDevice:
    """A session on a device with room for 4 rows a call: more raises CUDA's out of
    memory error as ONNX Runtime words it (a stand-in: no GPU here)."""

    def __init__(self) -> None:
        self.inner = _conv()

    def get_inputs(self) -> Any:
        return self.inner.get_inputs()

    def run(self, outputs: Any, feeds: dict[str, np.ndarray]) -> Any:
        if feeds["x"].shape[0] > 4:
            raise RuntimeError("CUDA failure 2: out of memory ; GPU=0")
        return self.inner.run(outputs, feeds)


def test_out_of_device_memory_in_a_batch_is_retried_alone_then_left_to_the_caller() -> None:
    dev = _SmallDevice()
    server = ModelServer(max_rows=64, max_wait_s=5.0)
    batched = BatchedSession(dev, server)
    x3, x5 = np.ones((3, 3, 16, 16), np.float32), np.ones((5, 3, 16, 16), np.float32)
    got = _in_threads(server, [lambda: batched.run(["y"], {"x": x3}),
                               lambda: batched.run(["y"], {"x": x3}),
                               lambda: batched.run(["y"], {"x": x5})])
    np.testing.assert_array_equal(got[0][0], dev.inner.run(["y"], {"x": x3})[0])
    np.testing.assert_array_equal(got[1][0], got[0][0])
    assert isinstance(got[2], RuntimeError) and device_fault(got[2])  # its caller halves
