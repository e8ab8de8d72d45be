"""Prosody per video frame: openSMILE's eGeMAPS (v02) low-level descriptors and pauses.

The descriptors come from the ``opensmile`` package (an optional extra,
``pip install 'bahfs[prosody]'``; openSMILE is under audEERING's research licence, for
research and non-commercial use only, see ``docs/models.md``). Without it every other
extractor works, and building this one raises a :class:`store.errors.ConfigError`
saying how to install it.

openSMILE computes its 25 descriptors every 10 ms over the whole soundtrack: loudness,
alpha ratio, Hammarberg index, spectral slopes 0-500 and 500-1500 Hz, spectral flux,
MFCC 1-4 (on every row); F0 (semitones from 27.5 Hz), jitter, shimmer, HNR, H1-H2,
H1-A3 and the first three formants' frequency, bandwidth and amplitude (the ``_nz``
descriptors, measured on voiced rows only, 0 elsewhere). A row is voiced where its
F0 is above 0. Per decoded video frame, over the frame's time span ``[t, t + 1/fps)``
(the rows whose centre lies in it):

- ``lld`` float32 ``(n_frames, 25)``: the mean of each descriptor, the ``_nz`` ones
  over the span's voiced rows (0 where it has none), columns as openSMILE names them;
- ``voicing`` float32: the fraction of the span's rows that are voiced;
- ``pause_s`` float32: the length in seconds of the unvoiced run at the frame's middle
  (0 when voiced there); a voiced stretch shorter than ``min_voiced_s`` does not end
  a run;
- ``since_voiced_s`` float32: seconds since the last voiced stretch ended (0 while
  voiced; from the start of the soundtrack before the first);
- ``has_audio`` bool: the frame's time lies within the soundtrack
  (:func:`extractors.audio.audio_coverage`); elsewhere every value is 0.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from extractors.audio import audio_attributes, audio_coverage
from extractors.base import DecodedVideo, Extractor, register
from extractors.decode import AUDIO_RATE
from extractors.identity import identity
from extractors.pauses import at_times, pause_rows
from extractors.runtime import Runtime
from store.errors import ConfigError
from store.features import ArraySpec

N_LLD = 25
F0_COLUMN = "F0semitoneFrom27.5Hz_sma3nz"
INSTALL = "pip install 'bahfs[prosody]' (opensmile; audEERING research licence)"


@dataclass(frozen=True)
class ProsodyConfig:
    min_voiced_s: float = identity(0.05)  # shorter voiced stretches do not end a pause


def load_opensmile() -> Any:
    """openSMILE's eGeMAPSv02 low-level descriptor extractor (``opensmile.Smile``)."""
    try:
        import opensmile
    except ImportError as exc:
        raise ConfigError("the prosody extractor needs the optional opensmile package",
                          expected=INSTALL) from exc
    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                           feature_level=opensmile.FeatureLevel.LowLevelDescriptors)


def opensmile_sha256() -> str:
    """SHA-256 of what makes openSMILE's numbers: its native library and the eGeMAPS
    configuration files it reads (hashed, never loaded)."""
    import opensmile

    root = Path(opensmile.__file__).parent / "core"
    files = sorted(root.glob("bin/*/libSMILEapi*")) + sorted(
        (root / "config").glob("egemaps/v02/*")) + sorted((root / "config").glob("gemaps/v01b/*"))
    h = hashlib.sha256(f"opensmile {opensmile.__version__}".encode())
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def lld_rows(smile: Any, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """openSMILE's rows for ``audio`` (16 kHz): their centre times (s), values
    ``(rows, 25)`` and the descriptor names."""
    df = smile.process_signal(audio.astype(np.float32), AUDIO_RATE)
    start = df.index.get_level_values("start").total_seconds().to_numpy()
    end = df.index.get_level_values("end").total_seconds().to_numpy()
    return (start + end) / 2, df.to_numpy(np.float64), [str(c) for c in df.columns]


def span_means(centres: np.ndarray, values: np.ndarray, voiced: np.ndarray,
               nz: np.ndarray, lo_t: np.ndarray, hi_t: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per span ``[lo_t, hi_t)``: the mean of each column over its rows (``nz``
    columns over its voiced rows only, 0 without), and its voiced fraction."""
    weights = np.where(nz[None, :], voiced[:, None], 1.0)
    csum = np.concatenate([np.zeros((1, values.shape[1])),
                           np.cumsum(values * weights, axis=0)])
    ccount = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(weights, axis=0)])
    lo = np.searchsorted(centres, lo_t, side="left")
    hi = np.searchsorted(centres, hi_t, side="left")
    count = ccount[hi] - ccount[lo]
    means = np.where(count > 0, (csum[hi] - csum[lo]) / np.maximum(count, 1), 0.0)
    n = hi - lo
    cvoiced = np.concatenate([[0.0], np.cumsum(voiced)])
    fraction = np.where(n > 0, (cvoiced[hi] - cvoiced[lo]) / np.maximum(n, 1), 0.0)
    return means, fraction


@register
class ProsodyExtractor(Extractor):
    """openSMILE eGeMAPS descriptors and pause lengths, one row per video frame."""

    name = "prosody"
    Config = ProsodyConfig
    config: ProsodyConfig
    requires = ("opensmile",)

    def __init__(self, config: ProsodyConfig | None = None, runtime: Runtime | None = None
                 ) -> None:
        super().__init__(config, runtime)
        self.smile = load_opensmile()
        self.columns = [str(c) for c in self.smile.feature_names]
        if len(self.columns) != N_LLD:
            raise ConfigError(f"openSMILE gives {len(self.columns)} eGeMAPS descriptors",
                              expected=f"{N_LLD} (eGeMAPSv02 low-level descriptors)")
        self._sha = opensmile_sha256()

    def model_sha256(self) -> str:
        return self._sha

    def provenance(self) -> dict[str, Any]:
        import opensmile

        return {"opensmile": opensmile.__version__, "feature_set": "eGeMAPSv02 LLD",
                "licence": "audEERING research licence (research, non-commercial)",
                "columns": {"lld": self.columns},
                "masks": {"lld": "has_audio", "voicing": "has_audio"}}

    def outputs(self) -> tuple[ArraySpec, ...]:
        return (ArraySpec("lld", "float32", (N_LLD,),
                          "eGeMAPSv02 descriptors averaged over the frame's span",
                          ("descriptor",), (tuple(self.columns),)),
                ArraySpec("voicing", "float32", (), "fraction of the frame's 10 ms rows voiced"),
                ArraySpec("pause_s", "float32", (), "length of the unvoiced run at the frame, s"),
                ArraySpec("since_voiced_s", "float32", (),
                          "seconds since the last voiced stretch ended"),
                ArraySpec("has_audio", "bool", (), "the frame's time lies within the soundtrack"))

    def attributes(self, video: DecodedVideo) -> dict[str, Any]:
        return audio_attributes(video)

    def compute(self, video: DecodedVideo) -> dict[str, np.ndarray]:
        n = video.n_frames
        has_audio = audio_coverage(video)[0]
        out = {"lld": np.zeros((n, N_LLD), np.float32), "voicing": np.zeros(n, np.float32),
               "pause_s": np.zeros(n, np.float32), "since_voiced_s": np.zeros(n, np.float32),
               "has_audio": has_audio}
        if video.audio is None or video.audio.size < AUDIO_RATE // 10 or not n:
            return out
        centres, values, names = lld_rows(self.smile, video.audio)
        voiced = values[:, names.index(F0_COLUMN)] > 0
        nz = np.array([c.endswith("_sma3nz") for c in names])
        period = 1.0 / video.info.fps if video.info.fps > 0 else 1 / 24
        means, fraction = span_means(centres, values, voiced, nz, video.timestamps,
                                     video.timestamps + period)
        pause, since = pause_rows(voiced, self.config.min_voiced_s)
        middle = video.timestamps + period / 2
        grid = np.round(centres / 0.01).astype(np.int64)  # rows every 10 ms from 0
        full_pause = np.zeros(int(grid.max()) + 1)
        full_since = np.zeros_like(full_pause)
        full_pause[grid], full_since[grid] = pause, since
        out["lld"] = np.where(has_audio[:, None], means, 0.0).astype(np.float32)
        out["voicing"] = np.where(has_audio, fraction, 0.0).astype(np.float32)
        out["pause_s"] = np.where(has_audio, at_times(full_pause, middle), 0.0).astype(np.float32)
        out["since_voiced_s"] = np.where(has_audio, at_times(full_since, middle),
                                         0.0).astype(np.float32)
        return out
