"""Where models run, and ONNX Runtime sessions.

One device setting (auto, cpu, cuda, cuda:N; :mod:`store.devices`) reaches every
model, explicitly: a run resolves it once where it starts (``--device``, the flow's
``device`` parameter, else ``$BAHFS_DEVICE``, else auto) and builds its extractors
with a :class:`Runtime` holding it and the thread count; nothing here reads the
environment for it:

* ONNX Runtime: ``cuda`` asks for the CUDA provider on device N, then the CPU; a
  session that did not get the CUDA provider (``onnxruntime`` instead of
  ``onnxruntime-gpu``, no GPU, a CUDA library missing) is a :class:`DeviceError`,
  never a quiet CPU run. ``auto`` takes CUDA when it loads and otherwise logs one
  warning and runs on the CPU.
* CTranslate2 (Whisper for ``words`` and ``audio``): the same rules with
  ``ctranslate2.get_cuda_device_count()`` (:func:`ct2_device`).
* :func:`device_fault_kind` tells a device failure (out of device memory, a lost
  device) from anything else, by exception type where the runtime has one: ONNX
  Runtime's ``EPFail`` and ``DeviceReset``, torch's ``OutOfMemoryError`` and
  ``AcceleratorError``. ONNX Runtime's other errors (``RuntimeException``, ``Fail``)
  and CTranslate2 (plain ``RuntimeError``) carry CUDA failures only in their
  message: for those, and only for them, the message is matched against known
  CUDA texts (:data:`_FAULTS`), a documented fallback. A host ``MemoryError`` is
  never a device fault (the classification, :mod:`store.failures`, calls it the
  host's).

Model files are checked against their expected SHA-256 before use
(:func:`check_model`; the digest comes from :func:`sha256_cached`, a performance
cache keyed by the file's resolved path, inode, size and modification time). The
files a worker context loaded its models from are stamped with their inode, size
and time when it loads them (:func:`model_stamps`), so that a run can tell when one
vanished or changed under it (:func:`check_loaded_models`, given that context's
stamps: another plan's files never stop this one's videos)."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from store.devices import DeviceSetting
from store.errors import BahfsError, ConfigError, DeviceError, ModelError

if TYPE_CHECKING:
    from extractors.batching import ModelServer

log = logging.getLogger("bahfs.extractors")
T = TypeVar("T")

#: The default thread count of a run's models, read where a run starts (the flows
#: give each local Dask worker its share of the cores explicitly).
THREADS_ENV = "BAHFS_THREADS"


#: The device setting when none is given.
AUTO = DeviceSetting("auto")


@dataclass(frozen=True)
class Runtime:
    """Where and how an extractor's models run: never part of a feature set's id.
    Passed to every extractor when it is built (``get_extractor(name)(config,
    runtime)``, :meth:`extractors.plan.PlanEntry.build`)."""

    device: DeviceSetting = AUTO
    threads: int = 0  # intra-op threads of ONNX Runtime and CTranslate2; 0: theirs
    #: rows per ONNX Runtime call gathered across the videos in flight in the process
    #: (one model thread, :mod:`extractors.batching`); 0: each video calls its sessions
    batch_rows: int = 0


#: Auto device, the runtimes' own thread counts: an extractor built without a runtime.
DEFAULT_RUNTIME = Runtime()


def threads_per_process() -> int:
    """``$BAHFS_THREADS`` when set, else 0 (every core: the runtimes decide). Read
    by the entry points only (CLI, flows, benchmarks)."""
    value = os.environ.get(THREADS_ENV, "")
    if not value:
        return 0
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"{THREADS_ENV}={value!r} is not a positive integer",
                          expected="e.g. 2")
    return int(value)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


#: A performance cache of model files' digests: (resolved path, inode, size,
#: mtime_ns) -> SHA-256. A file replaced or rewritten gets another key and is hashed
#: again, so it only saves re-reading unchanged files (planning a run hashes every
#: model file of the plan; a rerun finds them here).
_DIGESTS: dict[tuple[str, int, int, int], str] = {}
_DIGESTS_LOCK = threading.Lock()


def sha256_cached(path: Path) -> str:
    """:func:`sha256_file` of ``path``, remembered while the file keeps its inode, size
    and modification time (:data:`_DIGESTS`)."""
    path = Path(path).resolve()
    before = path.stat()
    key = (str(path), before.st_ino, before.st_size, before.st_mtime_ns)
    with _DIGESTS_LOCK:
        known = _DIGESTS.get(key)
    if known is not None:
        return known
    digest = sha256_file(path)
    if _stamp(path) == key[1:]:  # unchanged while it was read: safe to remember
        with _DIGESTS_LOCK:
            _DIGESTS[key] = digest
    return digest


def check_model(path: Path, expected_sha256: str | None) -> str:
    """The file's SHA-256; raises when it differs from ``expected_sha256``. Reads the
    file (or finds its digest in :data:`_DIGESTS`); loads nothing."""
    if not Path(path).is_file():
        raise ModelError("model file not found", path=path,
                         expected="the file shipped by the model's package, or a path you set")
    digest = sha256_cached(Path(path))
    if expected_sha256 and digest != expected_sha256:
        raise ModelError("model file does not match its expected SHA-256", path=path,
                         expected=expected_sha256)
    return digest


_WARNED: set[str] = set()
_NO_CUDA = "no GPU for ONNX Runtime (no CUDA provider): models run on the CPU"
_FAULTS = ("out of memory", "cuda error", "cuda failure", "cudaerror", "cublas_status",
           "cudnn_status", "device-side assert", "no cuda-capable device",
           "cuda driver", "illegal memory access", "failed to allocate memory",
           "libcublas", "libcudnn", "libcudart")


def load_cuda_libraries() -> None:
    """Make the CUDA libraries that pip's ``nvidia-*`` wheels install findable (they
    live in ``site-packages/nvidia/*/lib``, which the loader does not search): ONNX
    Runtime's own ``preload_dlls`` for its CUDA provider, and cuBLAS 12 for
    CTranslate2. Does nothing where they are absent (a CPU install)."""
    import ctypes
    import importlib.util

    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers() and \
            hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls()
        except OSError as exc:  # a library missing: the session check says so later
            log.debug("onnxruntime.preload_dlls: %s", exc)
    spec = importlib.util.find_spec("nvidia")
    for base in (spec.submodule_search_locations or []) if spec else []:
        for lib in sorted(Path(base).glob("cublas/lib/libcublas*.so.12")):
            try:
                ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
            except OSError as exc:
                log.debug("cannot preload %s: %s", lib, exc)


def warn_once(key: str, message: str) -> None:
    """Log ``message`` as a warning once per process (a user sees it in the run log)."""
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning(message)


_MEMORY_TEXT = ("out of memory", "failed to allocate memory", "cudaerrormemoryallocation")


def _typed_device_faults() -> tuple[tuple[type[BaseException], ...],
                                    tuple[type[BaseException], ...]]:
    """(out-of-device-memory types, device-lost types) of the runtimes installed."""
    memory: list[type[BaseException]] = []
    lost: list[type[BaseException]] = []
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

        lost += [getattr(ort_state, n) for n in ("EPFail", "DeviceReset")
                 if hasattr(ort_state, n)]
    except ImportError:  # pragma: no cover - onnxruntime is a dependency
        pass
    import sys

    torch = sys.modules.get("torch")  # only where torch is already in use
    if torch is not None:
        memory += [t for t in (getattr(torch, "OutOfMemoryError", None),) if t]
        lost += [t for t in (getattr(torch, "AcceleratorError", None),) if t]
    return tuple(memory), tuple(lost)


def device_fault_kind(exc: BaseException) -> str | None:
    """``memory`` (out of device memory: retried), ``lost`` (the device failed or
    cannot be had: the run stops) or None (not a device fault). By type first; the
    message only for runtime errors that carry no type of their own."""
    if isinstance(exc, MemoryError):
        return None  # the host's memory, not the device's
    memory, lost = _typed_device_faults()
    text = str(exc).lower()
    if isinstance(exc, memory):
        return "memory"
    if isinstance(exc, lost):
        return "memory" if any(m in text for m in _MEMORY_TEXT) else "lost"
    if isinstance(exc, DeviceError):
        return "memory" if "memory" in text else "lost"
    if isinstance(exc, RuntimeError) and any(f in text for f in _FAULTS):  # fallback
        return "memory" if any(m in text for m in _MEMORY_TEXT) else "lost"
    return None


def device_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is the device failing (out of device memory, CUDA errors);
    a host ``MemoryError`` is not (:func:`device_fault_kind`)."""
    return device_fault_kind(exc) is not None


def in_halves(call: Callable[[slice], T], n: int, join: Callable[[list[T]], T],
              what: str) -> T:
    """``call(slice(0, n))``; when the device runs out of memory (:func:`device_fault`),
    the rows in two halves joined by ``join``, each halved again the same way down to
    one row, whose device error goes up (to be retried, or to stop the run). Warns
    once per process per ``what`` (the model's name)."""
    def rows(lo: int, hi: int) -> T:
        try:
            return call(slice(lo, hi))
        except Exception as exc:
            if not device_fault(exc) or hi - lo <= 1:
                raise
            warn_once(f"halve-{what}", f"device out of memory at a batch of {hi - lo} rows "
                                       f"of {what}: retrying in halves")
            mid = (lo + hi) // 2
            return join([rows(lo, mid), rows(mid, hi)])

    return rows(0, n)


def concat_outputs(parts: list[list[np.ndarray]]) -> list[np.ndarray]:
    """``join`` for :func:`in_halves` over calls that return one array per model
    output: each output's rows of the parts, in order."""
    return [np.concatenate(rows) for rows in zip(*parts, strict=True)]


#: A model file as a run found it: inode, size, modification time (ns).
Stamp = tuple[int, int, int]


def _stamp(path: Path) -> Stamp:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def model_stamps(paths: Iterable[Path]) -> dict[str, Stamp]:
    """The stamp of each model file (by resolved path), as the models are loaded."""
    return {str(Path(p).resolve()): _stamp(Path(p).resolve()) for p in paths}


def check_loaded_models(stamps: Mapping[str, Stamp]) -> None:
    """Raise :class:`ModelError` when a file of ``stamps`` (the models a worker context
    loaded) is gone or changed since (the models in memory no longer match what is on
    disk: a run must stop rather than mix them with a reloaded one)."""
    for name, stamp in stamps.items():
        path = Path(name)
        try:
            now = _stamp(path)
        except FileNotFoundError:
            raise ModelError("model file removed since this process loaded it", path=path,
                             expected="the model file back in place (the run stops: "
                                      "features would come from a model no longer on "
                                      "disk)") from None
        if now != stamp:
            raise ModelError("model file changed since this process loaded it", path=path,
                             expected="the model file this run started with; run again "
                                      "to use the new one (it gets its own feature set)")


def device_error(exc: BaseException, path: str | Path | None = None,
                 participant: str | None = None, video: str | None = None) -> DeviceError:
    """A device failure met on a video (never the video's fault: retried)."""
    return DeviceError(f"the device failed: {exc}", path=path, participant=participant,
                       video=video, expected="free GPU memory and a working device (retried)")


@lru_cache(maxsize=1)
def _preload() -> None:
    load_cuda_libraries()


def providers(want: DeviceSetting) -> list[str]:
    """Execution providers to ask for, in order (never Azure, never implicit)."""
    return [p if isinstance(p, str) else p[0] for p in provider_list(want)]


def provider_list(want: DeviceSetting) -> list[str | tuple[str, dict[str, Any]]]:
    """Providers with their options for the device setting (CUDA device N, then CPU)."""
    import onnxruntime as ort

    if want.kind == "cpu":
        return ["CPUExecutionProvider"]
    _preload()
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        if want.kind == "cuda":
            raise DeviceError(f"device {want} asked for, but ONNX Runtime has no CUDA "
                              f"provider (installed: onnxruntime {ort.__version__}, "
                              f"providers {ort.get_available_providers()})",
                              expected="onnxruntime-gpu and a GPU (docs/operations.md, "
                                       "GPUs), or --device auto/cpu")
        warn_once("ort-cpu", _NO_CUDA)
        return ["CPUExecutionProvider"]
    return [("CUDAExecutionProvider", {"device_id": want.index}), "CPUExecutionProvider"]


def session_device(sess: Any, want: DeviceSetting) -> str:
    """``cuda:N`` or ``cpu``: where a session actually runs; raises DeviceError when
    CUDA was asked for and the session fell back to the CPU."""
    got = sess.get_providers()[0]
    if got == "CUDAExecutionProvider":
        return f"cuda:{want.index}"
    if want.kind == "cuda":
        raise DeviceError(f"device {want} asked for, but the CUDA provider did not load "
                          "(a CUDA or cuDNN library missing?); the session would run on "
                          f"{got}", expected="a working CUDA setup, or --device auto/cpu")
    import onnxruntime as ort

    if want.kind == "auto":
        if "CUDAExecutionProvider" in ort.get_available_providers():
            warn_once("ort-fallback", "the CUDA provider did not load: ONNX Runtime runs "
                                      "on the CPU")
        else:
            warn_once("ort-cpu", _NO_CUDA)
    return "cpu"


def ct2_device(want: DeviceSetting) -> tuple[str, int]:
    """(``cuda``, N) or (``cpu``, 0) for CTranslate2, by the same rules as ONNX Runtime."""
    import ctranslate2

    if want.kind == "cpu":
        return "cpu", 0
    _preload()
    count = ctranslate2.get_cuda_device_count()
    if want.kind == "cuda":
        if want.index >= count:
            raise DeviceError(f"device {want} asked for, but CTranslate2 sees {count} CUDA "
                              "devices", expected="a GPU CTranslate2 can use, or "
                                                  "--device auto/cpu")
        return "cuda", want.index
    if count == 0:
        warn_once("ct2-cpu", "no GPU for CTranslate2: Whisper runs on the CPU")
        return "cpu", 0
    return "cuda", 0


@lru_cache(maxsize=16)
def _session(model: bytes | str, threads: int, device: DeviceSetting) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    try:
        sess = ort.InferenceSession(model, sess_options=opts, providers=provider_list(device))
    except BahfsError:  # provider_list's DeviceError (CUDA asked for, none here) as raised
        raise
    except Exception as exc:  # onnxruntime raises its own types
        if device_fault(exc):
            raise DeviceError(f"the device failed loading a model: {exc}") from exc
        raise
    log.info("onnxruntime session on %s", sess.get_providers()[0])
    return sess


def session(model: bytes | str, runtime: Runtime = DEFAULT_RUNTIME,
            server: ModelServer | None = None) -> Any:
    """An InferenceSession on ``runtime``'s device (default: auto; checked: CUDA asked
    for and not had raises), quiet unless something is wrong. Sessions are a
    performance cache keyed by (model, threads, device): extractors of one model
    share one. With ``server`` (a worker context's model thread,
    :mod:`extractors.batching`), its calls go through that thread
    (:class:`extractors.batching.BatchedSession`)."""
    sess = _session(model, runtime.threads, runtime.device)
    session_device(sess, runtime.device)
    if server is not None:
        from extractors.batching import BatchedSession

        return BatchedSession(sess, server)
    return sess
