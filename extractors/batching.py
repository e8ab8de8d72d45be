"""Model calls of several videos in one: a model thread per worker context that gathers
the ONNX Runtime calls of the videos in flight in a worker process.

With several videos in flight in one process (Dask worker threads, ``videos_per_worker``
in the ``extract`` flow), each video's thread decodes, crops and aligns on its own
(CPU work, beside the model calls) and submits its model inputs here instead of
calling the session itself. One model thread per worker context
(:class:`extractors.context.WorkerContext`, made when its runtime sets ``batch_rows``;
it ends when the context closes, :meth:`ModelServer.close`) takes the oldest request,
gathers the other waiting requests for the same session with the same outputs and the
same input shapes past the first axis, up to ``max_rows`` rows, concatenates them on
axis 0, runs the session once and gives each request its rows of every output back.
It waits for more requests at most ``max_wait_s`` and only while some registered
video (:meth:`ModelServer.video`) is not itself waiting on the model thread: a lone
video never waits.

Rows of a batch do not interact in the models this wraps (CenterFace, the face
expression model, MediaPipe's): each row's outputs are those of the same call made
alone, to float tolerance (measured: ``benchmarks/worker.py``, ``tests/extractors/
test_batching.py``). A session whose input has a fixed first dimension, or whose
outputs do not have the batch's rows first, runs each request alone.

Failures stay with their video: when a call of several requests raises, each request
is run again alone, so only the one whose input (or the device, for each of them)
fails gets the exception, with its original type (device faults are still recognised
by :func:`extractors.runtime.device_fault_kind`, and the callers' halving on out of
device memory still works).

:class:`BatchStats` counts calls, rows and the time the model thread spends in model
calls: the batch occupancy (rows per call over ``max_rows``) and the fraction of wall
time the model thread waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: How long the model thread waits for more requests to fill a batch (seconds).
MAX_WAIT_S = 0.002


@dataclass
class _Request:
    sess: Any
    outputs: tuple[str, ...] | None
    feeds: dict[str, np.ndarray]
    key: tuple[Any, ...]
    rows: int
    done: threading.Event = field(default_factory=threading.Event)
    result: list[np.ndarray] | None = None
    error: BaseException | None = None


@dataclass
class BatchStats:
    """What the model thread did since :meth:`ModelServer.reset_stats`."""

    max_rows: int
    calls: int = 0
    rows: int = 0
    requests: int = 0
    retried_alone: int = 0  # requests run again alone after their batch failed
    busy_s: float = 0.0  # inside model calls
    started: float = field(default_factory=time.perf_counter)

    @property
    def occupancy(self) -> float:
        """Rows per model call over ``max_rows`` (1: every call full)."""
        return self.rows / (self.calls * self.max_rows) if self.calls else 0.0

    @property
    def wall_s(self) -> float:
        return time.perf_counter() - self.started

    @property
    def idle(self) -> float:
        """The fraction of wall time the model thread was not in a model call."""
        wall = self.wall_s
        return max(0.0, 1.0 - self.busy_s / wall) if wall > 0 else 0.0


def _batchable(sess: Any) -> bool:
    """Whether every input takes any number of rows (a dynamic first dimension)."""
    try:
        return all(not isinstance(i.shape[0], int) for i in sess.get_inputs())
    except (AttributeError, IndexError, TypeError):
        return False


class ModelServer:
    """The model thread of one runtime (see the module docstring)."""

    def __init__(self, max_rows: int, max_wait_s: float = MAX_WAIT_S) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, got {max_rows}")
        self.max_rows, self.max_wait_s = max_rows, max_wait_s
        self._cond = threading.Condition()
        self._queue: list[_Request] = []
        self._videos = 0
        self._alone: set[int] = set()  # sessions whose outputs could not be split
        self._dynamic: dict[int, bool] = {}  # session -> inputs take any number of rows
        self._thread: threading.Thread | None = None
        self._closed = False
        self.stats = BatchStats(max_rows)

    def close(self) -> None:
        """End the model thread once the requests already queued are served; a later
        :meth:`run` raises."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    @property
    def running(self) -> bool:
        """Whether the model thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def reset_stats(self) -> BatchStats:
        """Start counting afresh; returns the counts so far."""
        with self._cond:
            old, self.stats = self.stats, BatchStats(self.max_rows)
        return old

    @contextmanager
    def video(self) -> Iterator[None]:
        """Around one video's extraction: the model thread then knows how many videos
        may still submit (it stops waiting once all of them wait on it)."""
        with self._cond:
            self._videos += 1
        try:
            yield
        finally:
            with self._cond:
                self._videos -= 1
                self._cond.notify_all()

    def run(self, sess: Any, outputs: Sequence[str] | None, feeds: dict[str, Any]
            ) -> list[np.ndarray]:
        """``sess.run(outputs, feeds)``, on the model thread, maybe with other rows."""
        arrays = {k: np.asarray(v) for k, v in feeds.items()}
        rows = {a.shape[0] if a.ndim else -1 for a in arrays.values()}
        if id(sess) not in self._dynamic:
            self._dynamic[id(sess)] = _batchable(sess)
        single = len(rows) != 1 or -1 in rows or id(sess) in self._alone or \
            not self._dynamic[id(sess)]
        shapes = tuple(sorted((k, a.shape[1:], a.dtype.str) for k, a in arrays.items()))
        names = tuple(outputs) if outputs is not None else None
        key = (id(sess), names, shapes, object() if single else None)
        req = _Request(sess, names, arrays, key, next(iter(rows)) if len(rows) == 1 else 1)
        with self._cond:
            if self._closed:
                raise RuntimeError("the model thread of this worker context was closed")
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="bahfs-model",
                                                daemon=True)
                self._thread.start()
            self._queue.append(req)
            self._cond.notify_all()
        req.done.wait()
        if req.error is not None:
            raise req.error
        return req.result if req.result is not None else []

    def _take(self) -> list[_Request]:
        """The next batch (called with the lock held, the queue not empty)."""
        deadline = time.perf_counter() + self.max_wait_s
        while True:
            key = self._queue[0].key
            group = [r for r in self._queue if r.key == key]
            full = sum(r.rows for r in group) >= self.max_rows
            everyone = len(self._queue) >= max(self._videos, 1)
            left = deadline - time.perf_counter()
            if full or everyone or left <= 0 or key[3] is not None:
                break
            self._cond.wait(left)
        batch: list[_Request] = []
        rows = 0
        for r in group:
            if batch and rows + r.rows > self.max_rows:
                break
            batch.append(r)
            rows += r.rows
        for r in batch:
            self._queue.remove(r)
        return batch

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return  # closed, nothing left to serve
                batch = self._take()
            self._serve(batch)

    def _call(self, batch: list[_Request]) -> list[np.ndarray]:
        first = batch[0]
        feeds = first.feeds if len(batch) == 1 else {
            k: np.concatenate([r.feeds[k] for r in batch]) for k in first.feeds}
        t0 = time.perf_counter()
        try:
            out = first.sess.run(list(first.outputs) if first.outputs is not None else None,
                                 feeds)
        finally:
            with self._cond:
                self.stats.busy_s += time.perf_counter() - t0
                self.stats.calls += 1
                self.stats.rows += sum(r.rows for r in batch)
                self.stats.requests += len(batch)
        return [np.asarray(o) for o in out]

    def _serve(self, batch: list[_Request]) -> None:
        try:
            out = self._call(batch)
        except BaseException as exc:  # handed to the caller(s), in their threads
            if len(batch) == 1:
                batch[0].error = exc
                batch[0].done.set()
                return
            with self._cond:
                self.stats.retried_alone += len(batch)
            for r in batch:  # the fault goes to the request (video) that causes it
                self._serve([r])
            return
        total = sum(r.rows for r in batch)
        if len(batch) > 1 and any(o.ndim == 0 or o.shape[0] != total for o in out):
            self._alone.add(id(batch[0].sess))  # outputs not row-aligned: never batch it
            for r in batch:
                self._serve([r])
            return
        start = 0
        for r in batch:
            r.result = out if len(batch) == 1 else [o[start:start + r.rows] for o in out]
            start += r.rows
            r.done.set()


class BatchedSession:
    """An ONNX Runtime session whose :meth:`run` goes through a :class:`ModelServer`;
    everything else (inputs, outputs, providers) is the session's."""

    def __init__(self, sess: Any, server: ModelServer) -> None:
        self.session, self.server = sess, server

    def run(self, output_names: Sequence[str] | None, input_feed: dict[str, Any],
            run_options: Any = None) -> list[np.ndarray]:
        if run_options is not None:
            return list(self.session.run(output_names, input_feed, run_options))
        return self.server.run(self.session, output_names, input_feed)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)
