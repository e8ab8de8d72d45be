"""Voicing runs on a 10 ms grid: pauses, the time since the last voiced stretch, and
flat-pitched voiced stretches (filled pauses), shared by ``prosody`` and ``fluency``.

A grid row ``k`` stands for the audio around ``k * hop`` seconds. A voiced stretch
shorter than ``min_voiced_s`` (a click, a pitch error) does not end a pause.
"""

from __future__ import annotations

import numpy as np

HOP_S = 0.01


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) row of every run of true rows in ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def drop_short(mask: np.ndarray, min_rows: int) -> np.ndarray:
    """``mask`` without its runs shorter than ``min_rows``."""
    out = mask.copy()
    for s, e in zip(*runs(mask), strict=True):
        if e - s < min_rows:
            out[s:e] = False
    return out


def pause_rows(voiced: np.ndarray, min_voiced_s: float, hop_s: float = HOP_S
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per grid row: the length in seconds of the unvoiced run it lies in (0 where
    voiced), and the seconds since the last voiced stretch ended (0 where voiced;
    from the start of the audio before the first one)."""
    kept = drop_short(voiced.astype(bool), max(1, round(min_voiced_s / hop_s)))
    run_len = np.zeros(kept.size, np.float64)
    for s, e in zip(*runs(~kept), strict=True):
        run_len[s:e] = (e - s) * hop_s
    rows = np.arange(kept.size)
    last = np.maximum.accumulate(np.where(kept, rows, -1))
    since = np.where(kept, 0.0, (rows - last) * hop_s)
    since[last < 0] = (rows[last < 0] + 1) * hop_s
    return run_len, since


def at_times(values: np.ndarray, times: np.ndarray, hop_s: float = HOP_S) -> np.ndarray:
    """``values`` (one per grid row) at each of ``times`` (the nearest row)."""
    if not values.size:
        return np.zeros(times.shape, values.dtype)
    k = np.clip(np.round(times / hop_s).astype(np.int64), 0, values.size - 1)
    out: np.ndarray = values[k]
    return out


def pitch_track(audio: np.ndarray, rate: int = 16_000, hop_s: float = HOP_S,
                fmin: float = 75.0, fmax: float = 400.0, threshold: float = 0.5
                ) -> np.ndarray:
    """F0 in Hz per grid row (0: unvoiced), from the normalised autocorrelation of a
    40 ms window: the lag of its highest peak between ``1/fmax`` and ``1/fmin``,
    voiced where that peak reaches ``threshold`` and the window is not silent."""
    win, hop = round(0.04 * rate), round(hop_s * rate)
    n_rows = int(np.ceil(audio.size / hop)) if audio.size else 0
    padded = np.pad(audio.astype(np.float32), (win // 2, win))
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[::hop][:n_rows]
    frames = frames - frames.mean(axis=1, keepdims=True)
    spec = np.fft.rfft(frames, n=2 * win, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, :win]
    energy = ac[:, 0]
    lo, hi = int(rate / fmax), min(int(rate / fmin), win - 1)
    norm = ac[:, lo:hi] / np.maximum(energy[:, None], 1e-12)
    lag = np.argmax(norm, axis=1)
    peak = norm[np.arange(norm.shape[0]), lag]
    rms = np.sqrt(energy / win)
    loud = rms > max(1e-3, float(np.percentile(rms, 20)) * 3.0) if rms.size else rms > 0
    f0 = np.where((peak >= threshold) & loud, rate / (lag + lo), 0.0)
    out: np.ndarray = f0.astype(np.float32)
    return out


def flat_voiced_runs(f0: np.ndarray, min_s: float, max_semitones: float,
                     bridge_s: float = 0.03, hop_s: float = HOP_S) -> list[tuple[int, int]]:
    """Voiced runs (unvoiced gaps up to ``bridge_s`` bridged) of at least ``min_s``
    whose pitch keeps within ``max_semitones`` (standard deviation) of its median:
    sustained, flat voicing, as a filled pause. Rows ``[start, end)``."""
    voiced = f0 > 0
    for s, e in zip(*runs(~voiced), strict=True):
        if s > 0 and e < voiced.size and (e - s) * hop_s <= bridge_s + 1e-9:
            voiced[s:e] = True
    out = []
    for s, e in zip(*runs(voiced), strict=True):
        if (e - s) * hop_s < min_s - 1e-9:
            continue
        pitch = f0[s:e][f0[s:e] > 0]
        semis = 12 * np.log2(pitch / np.median(pitch))
        if float(np.std(semis)) <= max_semitones:
            out.append((int(s), int(e)))
    return out
