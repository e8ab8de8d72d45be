"""The extractor contract: a frozen config dataclass, a registered name, declared
outputs, and a method that turns one decoded video into typed per-frame arrays.

An extractor sees a :class:`DecodedVideo` (frame timestamps, the soundtrack, and a
way to stream the frames) and returns :class:`store.features.VideoFeatures`, whose
arrays all have exactly ``len(timestamps)`` rows; the store checks it again.

Building an extractor is cheap: it resolves and hashes its model files, reads their
sidecar metadata and declares its arrays, so its feature set (:meth:`Extractor.spec`,
the id) is known without an inference session or a loaded model. :meth:`Extractor.load`
creates what running needs (ONNX Runtime sessions, Whisper, encoders) and checks the
models against what was declared; a worker context calls it before its first video
(:mod:`extractors.context`), and an extractor used on its own loads on first use.

An extractor without a model file declares :attr:`Extractor.algorithm_version`, which
enters its id (:meth:`Extractor.model_sha256`); ``tests/extractors/test_algorithm_versions.py``
holds each version to a hash of the code that computes the numbers.
"""

from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from extractors.identity import split_config
from extractors.runtime import Runtime, device_error, device_fault
from store.errors import BahfsError, ConfigError, ExtractionError
from store.features import ArraySpec, FeatureSetSpec, VideoFeatures
from store.media import VideoInfo

if TYPE_CHECKING:
    from extractors.services import Services


@dataclass(frozen=True)
class DecodedVideo:
    """One video as the extractors see it (decoded once, shared by all of them)."""

    path: Path
    video_id: str
    participant_id: str
    info: VideoInfo
    timestamps: np.ndarray  # (n_frames,) seconds, one per decoded frame
    audio: np.ndarray | None  # mono float32 at 16 kHz; None without an audio stream

    @property
    def n_frames(self) -> int:
        return int(self.timestamps.shape[0])


class Extractor(ABC):
    """Base class: subclasses set ``name``, ``Config`` and ``outputs``."""

    name: ClassVar[str]
    Config: ClassVar[type[Any]]
    #: The feature set's name when it is not the extractor's (set by a plan).
    label: str = ""
    #: Where the models ran (``cpu``, ``cuda:N``), recorded with every video.
    device: str = "cpu"
    #: Where and how the models run (device setting, threads), given when built.
    runtime: Runtime = Runtime()
    #: Built with its default config it has no model to run: a plan names one by path.
    needs_model: ClassVar[bool] = False
    #: Optional packages it needs (an extra of bahfs): without them building it fails.
    requires: ClassVar[tuple[str, ...]] = ()
    #: For an extractor without a model file: the version of how it computes its
    #: numbers, part of its id; raise it whenever the numbers change (a test holds it
    #: to the code). Version 1 keeps the ids such extractors had before versions.
    algorithm_version: ClassVar[int] = 1

    def __init__(self, config: Any = None, runtime: Runtime | None = None) -> None:
        config = config if config is not None else self.Config()
        params = getattr(type(config), "__dataclass_params__", None)
        if not isinstance(config, self.Config) or params is None or not params.frozen:
            raise ConfigError(f"{self.name}: config must be a frozen {self.Config.__name__}",
                              expected=f"{self.Config.__name__}(...)")
        split_config(config)  # every field declared identity or run option, or raises
        self.config = config
        self.runtime = runtime if runtime is not None else Runtime()
        self._load_lock = threading.RLock()
        self._services: Services | None = None
        self._own_services = False
        self._loading = False

    def load(self, services: Services | None = None) -> None:
        """Make it ready to run, once: sessions, Whisper, encoders, and the checks that
        need them (:meth:`_load`). ``services``: the worker context's model thread and
        whisperX runner; without them (an extractor used on its own) it makes its own,
        ended by :meth:`close`."""
        with self._load_lock:
            if self._services is not None or self._loading:
                return  # loaded, or loading in this thread (a check run by _load)
            from extractors.services import Services

            own = services is None
            given = services if services is not None else Services.for_runtime(self.runtime)
            self._loading = True
            try:
                self._load(given)
            except BaseException:
                if own:
                    given.close()
                raise
            finally:
                self._loading = False
            self._services, self._own_services = given, own

    @property
    def loaded(self) -> bool:
        return self._services is not None

    @property
    def services(self) -> Services:
        """The services it was loaded with (loading it first if need be)."""
        self.load()
        services = self._services
        if services is None:  # pragma: no cover - load() sets it or raises
            raise ConfigError(f"{self.name}: not loaded", expected="load() to succeed")
        return services

    def _load(self, services: Services) -> None:  # noqa: B027 - optional, not abstract
        """Create what running needs (subclasses with models); nothing by default."""

    def close(self) -> None:
        """End the services it made for itself (none when a worker context lent them)."""
        with self._load_lock:
            if self._services is not None and self._own_services:
                self._services.close()
            self._services = None

    def model_files(self) -> tuple[Path, ...]:
        """The files its models are loaded from (checked while a run goes on)."""
        return ()

    @abstractmethod
    def outputs(self) -> tuple[ArraySpec, ...]:
        """The arrays this extractor produces, each ``(n_frames, *shape)``."""

    def model_sha256(self) -> str:
        """SHA-256 of the model file(s); an extractor without a model hashes its class
        and :attr:`algorithm_version` (version 1: the class alone, as before versions)."""
        name = f"{type(self).__module__}.{type(self).__qualname__}"
        version = type(self).algorithm_version
        return hashlib.sha256((name if version == 1 else f"{name}@{version}").encode()
                              ).hexdigest()

    def spec(self) -> FeatureSetSpec:
        """The feature set: its id hashes the config's identity fields only; the run
        options of this extractor are recorded in ``extra["run_options"]``
        (:mod:`extractors.identity`)."""
        ident, run = split_config(self.config)
        return FeatureSetSpec(self.name, ident, self.model_sha256(), self.outputs(),
                              extra={**self.provenance(), "run_options": run},
                              name=self.label if self.label != self.name else "")

    def provenance(self) -> dict[str, Any]:
        """What is not identity but worth recording (versions, model metadata); known
        without loading the models."""
        return {}

    def run_provenance(self) -> dict[str, Any]:
        """What only the loaded models can say (e.g. the ONNX Runtime provider),
        recorded with each video beside ``device``."""
        return {}

    @abstractmethod
    def compute(self, video: DecodedVideo) -> dict[str, np.ndarray]:
        """Per-frame arrays for ``video`` (validated against :meth:`outputs`)."""

    def attributes(self, video: DecodedVideo) -> dict[str, Any]:
        """Per-video results that are not per-frame arrays (e.g. a transcript)."""
        return {}

    def features(self, video: DecodedVideo, arrays: dict[str, np.ndarray]) -> VideoFeatures:
        """The validated output for ``video`` from computed ``arrays``."""
        return VideoFeatures(self.spec(), video.video_id, video.participant_id,
                             video.timestamps.astype(np.float64), arrays,
                             {**self.attributes(video), "device": self.device,
                              **self.run_provenance()})

    def extract(self, video: DecodedVideo) -> VideoFeatures:
        self.load()
        try:
            arrays = self.compute(video)
        except BahfsError:  # already says whose fault it is: kept as raised
            raise
        except Exception as exc:
            if device_fault(exc):
                raise device_error(exc, video.path, video.participant_id,
                                   video.video_id) from exc
            if not isinstance(exc, (ValueError, RuntimeError)):
                raise
            raise ExtractionError(f"{self.name} failed: {exc}", path=video.path,
                                  participant=video.participant_id, video=video.video_id
                                  ) from exc
        return self.features(video, arrays)


class FrameExtractor(Extractor):
    """An extractor that consumes decoded frames: the pipeline decodes a video once
    and feeds the same batches to every frame extractor (``consume``), then asks
    each for its arrays (``finish``)."""

    @abstractmethod
    def consume(self, state: dict[str, Any], frames: np.ndarray) -> None:
        """Process a batch of RGB frames ``(B, H, W, 3)`` in decoding order."""

    @abstractmethod
    def finish(self, state: dict[str, Any], video: DecodedVideo) -> dict[str, np.ndarray]:
        """Per-frame arrays once every frame was consumed."""

    def compute(self, video: DecodedVideo) -> dict[str, np.ndarray]:
        from extractors.decode import open_video

        self.load()
        state: dict[str, Any] = {}
        stream = open_video(video.path)
        for frames in stream:
            self.consume(state, frames)
        if stream.n_decoded != video.n_frames:
            raise ExtractionError(f"decoded {stream.n_decoded} frames, expected "
                                  f"{video.n_frames}", path=video.path, video=video.video_id)
        return self.finish(state, video)


REGISTRY: dict[str, type[Extractor]] = {}
#: Plugin extractors found but left out (:mod:`extractors.plugins`), with why.
LEFT_OUT: dict[str, str] = {}
E = TypeVar("E", bound=type[Extractor])


def register(cls: E) -> E:
    """Class decorator: make an extractor available by its name."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ConfigError(f"two extractors named {cls.name!r}")
    REGISTRY[cls.name] = cls
    return cls


def get_extractor(name: str) -> type[Extractor]:
    if name not in REGISTRY and name in LEFT_OUT:
        raise ConfigError(f"extractor {name!r} is an installed plugin that was left out: "
                          f"{LEFT_OUT[name]}", expected="a plugin that loads (see above)")
    if name not in REGISTRY:
        raise ConfigError(f"unknown extractor {name!r}", expected=f"one of {sorted(REGISTRY)}")
    return REGISTRY[name]


def frame_windows(times: np.ndarray, rate: int, window_s: float) -> tuple[np.ndarray, int]:
    """Sample index where a window of ``window_s`` centred on each frame time starts,
    and the window length in samples (the paper's one audio vector per frame)."""
    length = max(1, round(window_s * rate))
    starts = np.round(times * rate).astype(np.int64) - length // 2
    return starts, length


def gather(signal: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """``(n, length)`` windows of ``signal`` at ``starts``, zero outside the signal."""
    pad = np.concatenate([np.zeros(length, signal.dtype), signal, np.zeros(length, signal.dtype)])
    idx = starts[:, None] + length + np.arange(length)[None, :]
    return pad[np.clip(idx, 0, pad.size - 1)]

