"""A worker's state for one plan, made where the worker starts its first video of
that plan and passed down to every video it runs.

A :class:`WorkerContext` holds, for one (plan, runtime):

* the plan's extractors, built and loaded (sessions, Whisper, encoders, checked);
* their :class:`~extractors.services.Services`: the model thread that gathers the
  ONNX Runtime calls of the videos in flight (when the runtime sets ``batch_rows``)
  and the whisperX runner;
* the stamps (inode, size, modification time) of the model files it loaded, so that
  :meth:`WorkerContext.check_models` stops a run whose models vanished or changed
  under it, and checks this plan's files only.

:meth:`WorkerContext.close` ends the model thread and the whisperX runner.

A worker process keeps its contexts between tasks in a :class:`ContextCache`, a
performance cache keyed by (plan, runtime) holding at most a few: the least recently
used is evicted and closed once no video uses it. :data:`CONTEXTS` is the one of this
process (a Dask worker runs its tasks in it); ``ContextCache.built`` counts the
contexts it built, the "model loads" of a run's report.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field

from extractors.base import Extractor
from extractors.plan import Plan
from extractors.runtime import Runtime, Stamp, check_loaded_models, model_stamps
from extractors.services import Services


def build_extractors(plan: Plan, runtime: Runtime) -> tuple[Extractor, ...]:
    """The plan's extractors on ``runtime``, built (model files checked and hashed,
    arrays declared) but not loaded: enough for their feature sets and ids."""
    return tuple(e.build(runtime) for e in plan)


@dataclass(eq=False)
class WorkerContext:
    """The extractors of one plan on one runtime, loaded, with what they share."""

    plan: Plan
    runtime: Runtime
    extractors: tuple[Extractor, ...]
    services: Services
    stamps: dict[str, Stamp]
    _users: int = field(default=0, repr=False)
    _evicted: bool = field(default=False, repr=False)

    @classmethod
    def open(cls, plan: Plan, runtime: Runtime) -> WorkerContext:
        """Build and load the plan's extractors on ``runtime`` and stamp their model
        files; on failure, nothing is left running."""
        services = Services.for_runtime(runtime)
        try:
            extractors = build_extractors(plan, runtime)
            for e in extractors:
                e.load(services)
            stamps = model_stamps(p for e in extractors for p in e.model_files())
        except BaseException:
            services.close()
            raise
        return cls(plan, runtime, extractors, services, stamps)

    @property
    def ids(self) -> list[str]:
        """The plan's feature-set ids."""
        return [e.spec().id for e in self.extractors]

    def check_models(self) -> None:
        """Raise ModelError when a model file of this context is gone or changed."""
        check_loaded_models(self.stamps)

    def video(self) -> AbstractContextManager[None]:
        """Around one video: the model thread knows how many videos may submit."""
        server = self.services.server
        return server.video() if server is not None else nullcontext()

    def close(self) -> None:
        """End the model thread and the whisperX runner."""
        self.services.close()


class ContextCache:
    """Worker contexts kept between tasks: a performance cache keyed by (plan,
    runtime), at most ``size`` of them; the least recently used is evicted, and
    closed once no video uses it."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self.built = 0  # contexts built by this cache (a run reports them as model loads)
        self._contexts: OrderedDict[tuple[Plan, Runtime], WorkerContext] = OrderedDict()
        self._lock = threading.Lock()

    @contextmanager
    def use(self, plan: Plan, runtime: Runtime) -> Iterator[WorkerContext]:
        """The context of (``plan``, ``runtime``), built on first use (videos in
        flight in threads wait for one build), for the duration of the block."""
        with self._lock:
            ctx = self._contexts.get((plan, runtime))
            if ctx is None:
                ctx = WorkerContext.open(plan, runtime)
                self.built += 1
                self._contexts[(plan, runtime)] = ctx
                self._evict()
            self._contexts.move_to_end((plan, runtime))
            ctx._users += 1
        try:
            yield ctx
        finally:
            with self._lock:
                ctx._users -= 1
                done = ctx._evicted and ctx._users == 0
            if done:
                ctx.close()

    def _evict(self, keep: int | None = None) -> None:
        """Drop the oldest contexts past ``keep`` (default: ``size``), closing those no
        video uses (the others close when released); called with the lock held."""
        limit = self.size if keep is None else keep
        while len(self._contexts) > limit:
            _, old = self._contexts.popitem(last=False)
            old._evicted = True
            if old._users == 0:
                old.close()

    def close(self) -> None:
        """Drop every context: those not in use close now, the others when released."""
        with self._lock:
            self._evict(keep=0)


#: The worker contexts of this process (see the module docstring).
CONTEXTS = ContextCache()
