"""``peak``: per video frame, the audio's peak level (dBFS) and zero-crossing rate
over a window centred on the frame. An extractor from outside bahfs, registered
through the ``bahfs.extractors`` entry point."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from extractors.audio import audio_coverage
from extractors.base import DecodedVideo, Extractor, frame_windows, gather
from extractors.identity import identity
from store.features import ArraySpec


@dataclass(frozen=True)
class PeakConfig:
    window_s: float = identity(0.1)


class PeakExtractor(Extractor):
    """Peak level and zero-crossing rate, one row per frame."""

    name = "peak"
    Config = PeakConfig
    config: PeakConfig

    def outputs(self) -> tuple[ArraySpec, ...]:
        return (ArraySpec("peak_db", "float32", (), "peak level in the window, dBFS"),
                ArraySpec("zcr", "float32", (), "zero crossings per second in the window"),
                ArraySpec("has_audio", "bool", (), "the frame's time lies within the sound"))

    def compute(self, video: DecodedVideo) -> dict[str, np.ndarray]:
        n = video.n_frames
        has_audio = audio_coverage(video)[0]
        if video.audio is None or not video.audio.size:
            return {"peak_db": np.full(n, -120.0, np.float32),
                    "zcr": np.zeros(n, np.float32), "has_audio": has_audio}
        starts, length = frame_windows(video.timestamps, 16_000, self.config.window_s)
        win = gather(video.audio, starts, length)
        peak = 20 * np.log10(np.maximum(np.abs(win).max(axis=1), 1e-6))
        zcr = (np.diff(np.signbit(win), axis=1).sum(axis=1) / self.config.window_s)
        return {"peak_db": np.where(has_audio, peak, -120.0).astype(np.float32),
                "zcr": np.where(has_audio, zcr, 0.0).astype(np.float32),
                "has_audio": has_audio}
