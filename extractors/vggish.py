"""VGGish by path, in the layout of the BAH paper: one 0.96 s log-mel patch per video
frame (a hop of 1/fps), centred on the frame, through an ONNX VGGish.

The front end is VGGish's own (the TensorFlow model's ``vggish_input``, as
torchvggish ports it; checked against torchvggish's code in
``tests/extractors/test_vggish.py``): 16 kHz mono; 25 ms frames every 10 ms with no
padding; a periodic Hann window; the magnitude of a 512-point FFT; 64 HTK mel bands
from 125 to 7500 Hz (the DC bin left out); ``log(mel + 0.01)``. A patch is 96
consecutive log-mel frames; frame ``k`` spans samples ``[160 k, 160 k + 400)``, so the
patch starting at frame ``k0`` is centred at ``160 k0 + 7800`` samples, and a video
frame at time ``t`` gets the patch whose centre is nearest ``t`` (frames beyond the
soundtrack's log-mel are silence, ``log(0.01)``).

``model_path``: an ONNX VGGish taking ``(N, 1, 96, 64)`` float32 patches and giving
``(N, D)`` embeddings (D = 128 for VGGish before its PCA); no VGGish weights ship with
any package, so the model is given by path. Output per frame: ``embedding`` float16
``(D,)`` and ``has_audio`` (the embedding is 0 where false).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from extractors.audio import audio_attributes, audio_coverage
from extractors.base import DecodedVideo, Extractor, register
from extractors.identity import identity, run_option
from extractors.onnx_graph import graph_io
from extractors.runtime import Runtime, check_model, session, session_device
from store.errors import ConfigError, ModelError
from store.features import ArraySpec

if TYPE_CHECKING:
    from extractors.services import Services

RATE, WIN, HOP, FFT = 16_000, 400, 160, 512
N_BANDS, PATCH = 64, 96
LOG_OFFSET = 0.01
EXPECTED = "an ONNX VGGish: input (N, 1, 96, 64) float32 log-mel patches, output (N, D)"


@dataclass(frozen=True)
class VGGishConfig:
    model_path: str = identity("")  # an ONNX VGGish (required)
    batch: int = run_option(64)  # patches per model call


@lru_cache(maxsize=1)
def mel_matrix() -> np.ndarray:
    """``(257, 64)``: VGGish's HTK mel weights (125-7500 Hz, no DC)."""
    def mel(f: np.ndarray) -> np.ndarray:
        out: np.ndarray = 1127.0 * np.log(1.0 + f / 700.0)
        return out

    bins = mel(np.linspace(0.0, RATE / 2, FFT // 2 + 1))
    edges = np.linspace(mel(np.array(125.0)), mel(np.array(7500.0)), N_BANDS + 2)
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    weights: np.ndarray = np.maximum(0.0, np.minimum((bins[:, None] - lo) / (mid - lo),
                                                     (hi - bins[:, None]) / (hi - mid)))
    weights[0, :] = 0.0
    return weights


def log_mel(audio: np.ndarray) -> np.ndarray:
    """``(frames, 64)`` float64: VGGish's log-mel spectrogram of 16 kHz audio."""
    x = np.asarray(audio, np.float64)
    if x.size < WIN:
        return np.zeros((0, N_BANDS))
    frames = np.lib.stride_tricks.sliding_window_view(x, WIN)[::HOP]
    window = 0.5 - 0.5 * np.cos(2 * np.pi / WIN * np.arange(WIN))
    spectrum = np.abs(np.fft.rfft(frames * window, FFT))
    out: np.ndarray = np.log(spectrum @ mel_matrix() + LOG_OFFSET)
    return out


def patches(mel: np.ndarray, times: np.ndarray) -> np.ndarray:
    """``(len(times), 96, 64)``: the patch centred nearest each time (seconds)."""
    first = np.round((times * RATE - (HOP * (PATCH - 1) + WIN) / 2) / HOP).astype(np.int64)
    pad = np.full((PATCH, N_BANDS), np.log(LOG_OFFSET))
    padded = np.concatenate([pad, mel, pad])
    idx = (first + PATCH).clip(0, padded.shape[0] - PATCH)[:, None] + np.arange(PATCH)
    out: np.ndarray = padded[idx]
    return out


@register
class VGGishExtractor(Extractor):
    """An ONNX VGGish's embedding of the 0.96 s around each frame."""

    name = "vggish"
    Config = VGGishConfig
    config: VGGishConfig
    needs_model = True

    def __init__(self, config: VGGishConfig | None = None, runtime: Runtime | None = None
                 ) -> None:
        super().__init__(config, runtime)
        if not self.config.model_path:
            raise ConfigError("vggish needs an ONNX VGGish (model_path)", expected=EXPECTED)
        if self.config.batch < 1:
            raise ConfigError(f"batch {self.config.batch}", expected="1 or more")
        self.path = Path(self.config.model_path)
        self._sha = check_model(self.path, None)
        inputs, outputs = graph_io(self.path)  # the graph's declared shapes: no session
        inp, out = inputs[0] if inputs else None, outputs[0]
        if inp is None or inp.shape is None or len(inp.shape) != 4 or \
                list(inp.shape[1:]) != [1, PATCH, N_BANDS] or out.shape is None or \
                len(out.shape) != 2 or not isinstance(out.shape[1], int):
            raise ModelError(f"input {list(inp.shape or ()) if inp else None}, output "
                             f"{list(out.shape or ())}", path=self.path, expected=EXPECTED)
        self.input_name, self.dim = inp.name, int(out.shape[1])
        self._session: Any = None

    def _load(self, services: Services) -> None:
        self._session = session(str(self.path), self.runtime, services.server)
        self.device = session_device(self._session, self.runtime.device)

    @property
    def session(self) -> Any:
        """The model's ONNX Runtime session (loaded on first use)."""
        self.load()
        return self._session

    def model_files(self) -> tuple[Path, ...]:
        return (self.path,)

    def model_sha256(self) -> str:
        return self._sha

    def provenance(self) -> dict[str, Any]:
        return {"front_end": "VGGish log-mel (torchvggish vggish_input), 0.96 s patch per "
                             "frame, hop 1/fps"}

    def outputs(self) -> tuple[ArraySpec, ...]:
        return (ArraySpec("embedding", "float16", (self.dim,),
                          "VGGish embedding of the 0.96 s centred on the frame"),
                ArraySpec("has_audio", "bool", (), "the frame's time lies within the soundtrack"))

    def attributes(self, video: DecodedVideo) -> dict[str, Any]:
        return audio_attributes(video)

    def embed(self, batch: np.ndarray) -> np.ndarray:
        """``(N, D)`` embeddings of ``(N, 96, 64)`` patches, ``batch`` per call."""
        out = [self.session.run(None, {self.input_name: batch[i:i + self.config.batch, None]
                                       .astype(np.float32)})[0]
               for i in range(0, batch.shape[0], self.config.batch)]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def compute(self, video: DecodedVideo) -> dict[str, np.ndarray]:
        has_audio = audio_coverage(video)[0]
        emb = np.zeros((video.n_frames, self.dim), np.float32)
        if video.audio is not None and video.audio.size >= WIN and has_audio.any():
            mel = log_mel(video.audio)
            emb[has_audio] = self.embed(patches(mel, video.timestamps[has_audio]))
        return {"embedding": emb.astype(np.float16), "has_audio": has_audio}
