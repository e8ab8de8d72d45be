"""Hand-made audio features per video frame: log-mel bands, energy, voice activity.

Output (one row per decoded video frame, from a window centred on the frame's
timestamp, as the paper aligns audio to frames):

- ``logmel`` float16 ``(n_frames, n_mels)``: mean log-mel power (25 ms STFT frames,
  10 ms hop) over ``window_s`` seconds around the frame;
- ``energy_db`` float32 ``(n_frames,)``: RMS level in dBFS over one frame period;
- ``voiced`` bool ``(n_frames,)``: energy above ``vad_db`` and 10 dB above the
  video's noise floor;
- ``has_audio`` bool ``(n_frames,)``: the frame's timestamp lies within the
  soundtrack (see :func:`audio_coverage`).

A video without an audio stream gives zeros, -120 dB, no voice and ``has_audio``
false everywhere, never an error; frames past the end of a soundtrack that stops
early get the same. Why frames lack audio is recorded in the per-video attributes
under ``audio`` (absent when every frame has audio).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from extractors.base import DecodedVideo, Extractor, frame_windows, gather, register
from extractors.decode import AUDIO_RATE
from extractors.identity import identity
from store.features import ArraySpec

_N_FFT, _HOP = 400, 160  # 25 ms window, 10 ms hop at 16 kHz


@dataclass(frozen=True)
class LogMelConfig:
    n_mels: int = identity(64)
    window_s: float = identity(0.2)
    fmin: float = identity(60.0)
    fmax: float = identity(7800.0)
    vad_db: float = identity(-45.0)


NO_AUDIO_STREAM = "no audio stream"
EMPTY_AUDIO = "audio stream decodes to no samples"
SHORT_AUDIO = "audio stream shorter than the video"


def audio_coverage(video: DecodedVideo) -> tuple[np.ndarray, str]:
    """Per frame, whether its timestamp lies within the soundtrack (``0 <= t <
    samples / 16 kHz``), and why some frames have none ("" when all have audio)."""
    if video.audio is None:
        return np.zeros(video.n_frames, bool), NO_AUDIO_STREAM
    if video.audio.size == 0:
        return np.zeros(video.n_frames, bool), EMPTY_AUDIO
    end = video.audio.size / AUDIO_RATE
    inside = (video.timestamps >= 0) & (video.timestamps < end)
    if inside.all():
        return inside, ""
    last = float(video.timestamps.max()) if video.n_frames else 0.0
    return inside, f"{SHORT_AUDIO}: the sound ends at {end:.3f} s, the last frame is at " \
                   f"{last:.3f} s"


def audio_attributes(video: DecodedVideo) -> dict[str, Any]:
    """``{"audio": why some frames have no audio}``, or ``{}`` when all have it."""
    reason = audio_coverage(video)[1]
    return {"audio": reason} if reason else {}


@lru_cache(maxsize=8)
def mel_filterbank(n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """HTK-style triangular filters, ``(n_mels, n_fft // 2 + 1)``."""
    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    mels = np.linspace(hz_to_mel(np.array(fmin)), hz_to_mel(np.array(fmax)), n_mels + 2)
    edges = mel_to_hz(mels)
    freqs = np.linspace(0, AUDIO_RATE / 2, _N_FFT // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None, :] - lo) / (mid - lo)
    down = (hi - freqs[None, :]) / (hi - mid)
    out: np.ndarray = np.maximum(0.0, np.minimum(up, down)).astype(np.float32)
    return out


def log_mel_frames(audio: np.ndarray, cfg: LogMelConfig) -> np.ndarray:
    """``(n_stft_frames, n_mels)`` log-mel power; frame k is centred at k * 10 ms."""
    padded = np.pad(audio.astype(np.float32), (_N_FFT // 2, _N_FFT // 2))
    if padded.size < _N_FFT:
        padded = np.pad(padded, (0, _N_FFT - padded.size))
    frames = np.lib.stride_tricks.sliding_window_view(padded, _N_FFT)[::_HOP]
    spec = np.abs(np.fft.rfft(frames * np.hanning(_N_FFT).astype(np.float32), axis=1)) ** 2
    mel = spec @ mel_filterbank(cfg.n_mels, cfg.fmin, cfg.fmax).T
    out: np.ndarray = np.log(mel + 1e-10).astype(np.float32)
    return out


@register
class LogMelExtractor(Extractor):
    """Log-mel, energy and voice activity, one row per video frame."""

    name = "logmel"
    Config = LogMelConfig
    config: LogMelConfig

    def outputs(self) -> tuple[ArraySpec, ...]:
        return (ArraySpec("logmel", "float16", (self.config.n_mels,),
                          "mean log-mel power around the frame", ("mel_band",)),
                ArraySpec("energy_db", "float32", (), "RMS level over one frame, dBFS"),
                ArraySpec("voiced", "bool", (), "voice activity (energy threshold)"),
                ArraySpec("has_audio", "bool", (), "the frame's time lies within the soundtrack"))

    def attributes(self, video: DecodedVideo) -> dict[str, Any]:
        """Why frames have no audio (``audio``), when some have none."""
        return audio_attributes(video)

    def compute(self, video: DecodedVideo) -> dict[str, np.ndarray]:
        n, cfg = video.n_frames, self.config
        has_audio = audio_coverage(video)[0]
        if video.audio is None or video.audio.size == 0:
            return {"logmel": np.zeros((n, cfg.n_mels), np.float16),
                    "energy_db": np.full(n, -120.0, np.float32),
                    "voiced": np.zeros(n, bool), "has_audio": has_audio}
        mel = log_mel_frames(video.audio, cfg)
        centres = np.arange(mel.shape[0]) * _HOP / AUDIO_RATE
        csum = np.concatenate([np.zeros((1, cfg.n_mels), np.float64),
                               np.cumsum(mel, axis=0, dtype=np.float64)])
        lo = np.searchsorted(centres, video.timestamps - cfg.window_s / 2, side="left")
        hi = np.searchsorted(centres, video.timestamps + cfg.window_s / 2, side="right")
        hi = np.maximum(hi, lo + 1).clip(max=mel.shape[0])
        lo = np.minimum(lo, hi - 1)
        logmel = (csum[hi] - csum[lo]) / (hi - lo)[:, None]
        period = 1.0 / video.info.fps if video.info.fps > 0 else 1 / 24
        starts, length = frame_windows(video.timestamps, AUDIO_RATE, period)
        rms = np.sqrt(np.mean(gather(video.audio, starts, length) ** 2, axis=1))
        energy = 20 * np.log10(np.maximum(rms, 1e-6))
        floor = float(np.percentile(energy[has_audio] if has_audio.any() else energy, 10))
        voiced = (energy > cfg.vad_db) & (energy > floor + 10.0) & has_audio
        logmel[~has_audio], energy[~has_audio] = 0.0, -120.0
        return {"logmel": logmel.astype(np.float16), "energy_db": energy.astype(np.float32),
                "voiced": voiced, "has_audio": has_audio}
