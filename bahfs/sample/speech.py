"""Speech for sample videos: espeak-ng utterances fitted into planned slots."""

from __future__ import annotations

import io
import subprocess
import wave

import numpy as np

from bahfs.sample.script import VideoPlan
from store.errors import SampleDataError
from store.media import require_tool

SAMPLE_RATE = 16_000


def _resample(x: np.ndarray, src_rate: int, dst_len: int) -> np.ndarray:
    """Linear resampling of ``x`` to ``dst_len`` samples."""
    if x.size == 0 or dst_len <= 0:
        return np.zeros(max(dst_len, 0), dtype=np.float32)
    src_t = np.arange(x.size, dtype=np.float64)
    dst_t = np.linspace(0.0, x.size - 1, dst_len)
    out: np.ndarray = np.interp(dst_t, src_t, x).astype(np.float32)
    return out


def synthesize(text: str, *, wpm: int, pitch: int, voice: str) -> np.ndarray:
    """espeak-ng speech for ``text`` as float32 mono at 16 kHz."""
    espeak = require_tool("espeak-ng")
    proc = subprocess.run(
        [espeak, "-v", voice, "-s", str(wpm), "-p", str(pitch), "--stdout", text],
        capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise SampleDataError(f"espeak-ng failed: {proc.stderr.decode(errors='replace')[:200]}",
                              expected=f"speech for {text!r}")
    with wave.open(io.BytesIO(proc.stdout)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    x = pcm.astype(np.float32) / 32768.0
    return _resample(x, rate, round(x.size * SAMPLE_RATE / rate))


def render_audio(plan: VideoPlan, rng: np.random.Generator) -> np.ndarray:
    """The whole soundtrack of ``plan``: a quiet room with each utterance in its slot.

    Speech longer than its slot is time-compressed to fit (a few percent at most with
    the planner's margins); shorter speech leaves silence at the end of the slot.
    """
    n = round(plan.n_frames / plan.fps * SAMPLE_RATE)
    track = (rng.standard_normal(n) * 0.002).astype(np.float32)  # room noise floor
    for utt in plan.utterances:
        speech = synthesize(utt.text, wpm=utt.wpm, pitch=plan.pitch, voice=plan.voice)
        start = round(utt.start_s * SAMPLE_RATE)
        slot = min(round(utt.end_s * SAMPLE_RATE), n) - start
        if speech.size > slot:
            speech = _resample(speech, SAMPLE_RATE, slot)
        track[start:start + speech.size] += 0.8 * speech
    return np.clip(track, -1.0, 1.0)


def write_wav(path: str, audio: np.ndarray) -> None:
    """Write float audio in [-1, 1] as 16-bit PCM mono WAV at 16 kHz."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(pcm.tobytes())
