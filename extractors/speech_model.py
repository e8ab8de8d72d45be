"""Speech models by path on ONNX Runtime: any Hugging Face wav2vec2, HuBERT, WavLM or
data2vec-audio folder (base models and emotion fine-tunes alike), exported to ONNX
once (:mod:`extractors.convert.speech_onnx`), its chosen hidden layers pooled to one
vector per video frame.

The soundtrack (16 kHz) is normalised as the folder's ``preprocessor_config.json``
says (``do_normalize``: zero mean, unit variance over the whole soundtrack), then run
in windows of ``window_s`` seconds that overlap by ``2 * overlap_s``: each window
starts on a multiple of the model's frame stride (320 samples), the last one ends
with the audio (no padding; a group-normalised first convolution gets the whole
soundtrack's per-channel mean and variance, :mod:`extractors.convert.speech_onnx`),
and each model frame (20 ms) is taken from the window in which it lies furthest
from an edge. Audio up to one window long runs whole. Windows of equal length are
batched (``batch`` per call, a run option; on CUDA when present), and the
session shares its calls across the videos in flight (:mod:`extractors.batching`).

Per decoded frame: ``hidden`` float16 ``(len(layers), width)``, the mean over the
model frames whose centre (the middle of its receptive field) lies in the frame's span
``[t, t + 1/fps)`` (the nearest one when none does) of each chosen hidden state
(``layers``: indices into the hidden states, 0 the feature projection, -1 the last
layer); ``has_audio`` as ``logmel`` (``hidden`` is 0 where false).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from extractors.audio import audio_attributes, audio_coverage
from extractors.base import DecodedVideo, Extractor, register
from extractors.convert.speech_onnx import (
    EXPECTED,
    conv0_stats,
    export_record,
    onnx_model,
    read_folder,
)
from extractors.decode import AUDIO_RATE
from extractors.identity import identity, run_option
from extractors.runtime import Runtime, session, session_device
from store.errors import ConfigError
from store.features import ArraySpec

if TYPE_CHECKING:
    from extractors.services import Services


@dataclass(frozen=True)
class SpeechModelConfig:
    model_dir: str = identity("")  # a Hugging Face speech model folder (required)
    layers: str = identity("-1")  # hidden states to keep, comma separated (0: projection)
    window_s: float = identity(20.0)
    overlap_s: float = identity(2.0)  # context kept on each side of a window's middle
    batch: int = run_option(4)  # windows per model call


def parse_layers(text: str, n_states: int) -> list[int]:
    """``"6,-1"`` as indices into ``n_states`` hidden states (checked)."""
    try:
        layers = [int(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise ConfigError(f"layers {text!r} are not integers",
                          expected="comma separated hidden-state indices, e.g. 6,-1") from exc
    if not layers or any(not -n_states <= i < n_states for i in layers):
        raise ConfigError(f"layers {text!r} outside the model's {n_states} hidden states",
                          expected=f"indices from {-n_states} to {n_states - 1}")
    return [i % n_states for i in layers]


def frame_geometry(config: dict[str, Any]) -> tuple[int, int]:
    """The model's frame stride and receptive field, in samples."""
    stride, field = 1, 1
    for k, s in zip(config.get("conv_kernel", (10, 3, 3, 3, 3, 2, 2)),
                    config.get("conv_stride", (5, 2, 2, 2, 2, 2, 2)), strict=True):
        field += (k - 1) * stride
        stride *= s
    return stride, field


def n_model_frames(samples: int, config: dict[str, Any]) -> int:
    n = samples
    for k, s in zip(config.get("conv_kernel", (10, 3, 3, 3, 3, 2, 2)),
                    config.get("conv_stride", (5, 2, 2, 2, 2, 2, 2)), strict=True):
        n = (n - k) // s + 1
    return max(n, 0)


def window_starts(samples: int, window: int, overlap: int, stride: int) -> list[int]:
    """Window starts (multiples of ``stride``) covering ``samples`` with windows of
    ``window`` samples overlapping by at least ``2 * overlap``."""
    if samples <= window:
        return [0]
    step = max(stride, (window - 2 * overlap) // stride * stride)
    last = (samples - window) // stride * stride
    starts = list(range(0, last, step))
    return [*starts, last]


def nearest_index(sorted_values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Per value of ``at``, the index of the nearest of ``sorted_values``."""
    k = np.searchsorted(sorted_values, at).clip(1, sorted_values.size - 1)
    left = sorted_values[k - 1]
    out: np.ndarray = np.where(np.abs(at - left) <= np.abs(sorted_values[k] - at), k - 1, k)
    return out if sorted_values.size > 1 else np.zeros(at.shape, np.int64)


@register
class SpeechModelExtractor(Extractor):
    """Hidden states of a Hugging Face speech model, pooled per video frame."""

    name = "speech_model"
    Config = SpeechModelConfig
    config: SpeechModelConfig
    needs_model = True

    def __init__(self, config: SpeechModelConfig | None = None,
                 runtime: Runtime | None = None) -> None:
        super().__init__(config, runtime)
        cfg = self.config
        if not cfg.model_dir:
            raise ConfigError("speech_model needs a model folder (model_dir)",
                              expected=EXPECTED)
        if cfg.window_s <= 2 * cfg.overlap_s or cfg.overlap_s < 0 or cfg.batch < 1:
            raise ConfigError(f"window_s {cfg.window_s}, overlap_s {cfg.overlap_s}, batch "
                              f"{cfg.batch}", expected="window_s > 2 * overlap_s >= 0, batch >= 1")
        self.model_config, pre, _ = read_folder(Path(cfg.model_dir))
        self.normalize = bool(pre.get("do_normalize", True))
        n_states = int(self.model_config["num_hidden_layers"]) + 1
        self.layers = parse_layers(cfg.layers, n_states)
        self.width = int(self.model_config["hidden_size"])
        self.stride, self.field = frame_geometry(self.model_config)
        self.onnx_path, self._sha = onnx_model(Path(cfg.model_dir))
        record, self.conv0 = export_record(self.onnx_path)
        self.group_norm, self.conv0_stride = bool(record["group_norm"]), record["conv0_stride"]
        self._session: Any = None

    def _load(self, services: Services) -> None:
        self._session = session(str(self.onnx_path), self.runtime, services.server)
        self.device = session_device(self._session, self.runtime.device)

    @property
    def session(self) -> Any:
        """The model's ONNX Runtime session (loaded on first use)."""
        self.load()
        return self._session

    def model_files(self) -> tuple[Path, ...]:
        return (self.onnx_path,)

    def model_sha256(self) -> str:
        return self._sha

    def provenance(self) -> dict[str, Any]:
        return {"model_type": self.model_config.get("model_type"),
                "group_norm_over_the_soundtrack": self.group_norm,
                "architectures": self.model_config.get("architectures"),
                "do_normalize": self.normalize, "layer_indices": self.layers}

    def outputs(self) -> tuple[ArraySpec, ...]:
        return (ArraySpec("hidden", "float16", (len(self.layers), self.width),
                          "chosen hidden states averaged over the frame's span",
                          ("layer", "hidden_unit"), self._layer_labels()),
                ArraySpec("has_audio", "bool", (), "the frame's time lies within the soundtrack"))

    def _layer_labels(self) -> tuple[tuple[str, ...], ...]:
        """``layer_<index>`` per chosen hidden state (none when an index repeats)."""
        names = tuple(f"layer_{i}" for i in self.layers)
        return (names, ()) if len(set(names)) == len(names) else ()

    def attributes(self, video: DecodedVideo) -> dict[str, Any]:
        return audio_attributes(video)

    def model_frames(self, audio: np.ndarray) -> np.ndarray:
        """``(frames, len(layers), width)``: the chosen hidden states of every model
        frame of ``audio`` (16 kHz), windowed as the module says."""
        x = audio.astype(np.float32)
        if self.normalize:
            x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
        window = round(self.config.window_s * AUDIO_RATE)
        starts = window_starts(x.size, window, round(self.config.overlap_s * AUDIO_RATE),
                               self.stride)
        length = min(window, x.size)
        stats = {}
        if self.group_norm:  # the whole soundtrack's, for every window
            mean, var = conv0_stats(x, self.conv0, self.conv0_stride)
            stats = {"conv0_mean": mean.astype(np.float32), "conv0_var": var.astype(np.float32)}
        total = n_model_frames(x.size, self.model_config)
        out = np.zeros((total, len(self.layers), self.width), np.float32)
        best = np.full(total, -1, np.int64)
        for lo in range(0, len(starts), self.config.batch):
            chunk = starts[lo:lo + self.config.batch]
            feeds = {"input_values": np.stack([x[s:s + length] for s in chunk]),
                     **{k: np.tile(v, (len(chunk), 1)) for k, v in stats.items()}}
            states = self.session.run(["hidden_states"], feeds)[0]
            for b, s in enumerate(chunk):
                frames = states[b, self.layers].transpose(1, 0, 2)  # (frames, layers, D)
                j = np.arange(frames.shape[0])
                k = s // self.stride + j
                keep = k < total
                edge = np.minimum(j, frames.shape[0] - 1 - j)
                take = keep & (edge > best[k.clip(max=total - 1)])
                out[k[take]] = frames[take]
                best[k[take]] = edge[take]
        return out

    def compute(self, video: DecodedVideo) -> dict[str, np.ndarray]:
        n = video.n_frames
        has_audio = audio_coverage(video)[0]
        hidden = np.zeros((n, len(self.layers), self.width), np.float32)
        if video.audio is None or video.audio.size < self.field or not n:
            return {"hidden": hidden.astype(np.float16), "has_audio": has_audio}
        frames = self.model_frames(video.audio)
        centres = (np.arange(frames.shape[0]) * self.stride + self.field / 2) / AUDIO_RATE
        period = 1.0 / video.info.fps if video.info.fps > 0 else 1 / 24
        csum = np.concatenate([np.zeros((1, *frames.shape[1:])),
                               np.cumsum(frames, axis=0, dtype=np.float64)])
        lo = np.searchsorted(centres, video.timestamps, side="left")
        hi = np.searchsorted(centres, video.timestamps + period, side="left")
        nearest = nearest_index(centres, video.timestamps + period / 2)
        empty = hi <= lo
        lo, hi = np.where(empty, nearest, lo), np.where(empty, nearest + 1, hi)
        hidden = (csum[hi] - csum[lo]) / (hi - lo)[:, None, None]
        hidden[~has_audio] = 0.0
        return {"hidden": hidden.astype(np.float16), "has_audio": has_audio}
