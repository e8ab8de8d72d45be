"""The learned audio embedding: one Whisper-encoder vector per decoded frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bahfs.sample.script import VideoPlan
from extractors.audio import LogMelExtractor
from extractors.audio_embed import WhisperEncoderExtractor
from extractors.base import DecodedVideo
from extractors.pipeline import extract_all
from store.media import VideoInfo

Media = dict[str, tuple[Path, VideoPlan | None]]


@pytest.fixture(scope="module")
def audio() -> WhisperEncoderExtractor:
    return WhisperEncoderExtractor()


@pytest.mark.parametrize("key", ["speech24", "fps30", "silent"])
def test_rows_equal_decoded_frames(media: Media, audio: WhisperEncoderExtractor,
                                   key: str) -> None:
    out = extract_all(media[key][0], [audio])[0]
    assert out.arrays["embedding"].shape == (out.n_frames, audio.dim)
    assert out.arrays["has_audio"].shape == (out.n_frames,)
    if key == "silent":
        assert not out.arrays["embedding"].any() and not out.arrays["has_audio"].any()
        assert out.attrs["audio"] == "no audio stream"
    else:
        assert out.arrays["has_audio"].all() and "audio" not in out.attrs


def test_speech_and_silence_embed_differently(media: Media,
                                              audio: WhisperEncoderExtractor) -> None:
    emb, mel = extract_all(media["speech24"][0], [audio, LogMelExtractor()])
    x = emb.arrays["embedding"].astype(np.float32)
    voiced = mel.arrays["voiced"]
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-9
    centre_v, centre_s = x[voiced].mean(0), x[~voiced].mean(0)
    within = float((x[~voiced] @ centre_s).mean())
    across = float((x[voiced] @ centre_s).mean())
    assert within > across and np.linalg.norm(centre_v - centre_s) > 0.05


def test_audio_longer_than_one_whisper_chunk(audio: WhisperEncoderExtractor) -> None:
    rng = np.random.default_rng(0)
    seconds, fps = 37.0, 24.0
    n = int(seconds * fps)
    info = VideoInfo("synthetic", seconds, fps, n, 64, 48, True)
    tone = np.sin(np.arange(int(seconds * 16000)) / 16000 * 2 * np.pi * 220).astype(np.float32)
    video = DecodedVideo(Path("synthetic"), "v", "p", info, np.arange(n) / fps,
                         0.3 * tone + 0.01 * rng.standard_normal(tone.size).astype(np.float32))
    emb = audio.extract(video).arrays["embedding"]
    assert emb.shape == (n, audio.dim)
    assert np.abs(emb[-24:]).sum(axis=1).min() > 0  # the second chunk is encoded too


def test_frames_past_the_end_of_the_soundtrack_have_no_audio(
        audio: WhisperEncoderExtractor) -> None:
    fps, n = 24.0, 96  # 4 s of video, 2.5 s of sound
    info = VideoInfo("synthetic", n / fps, fps, n, 64, 48, True)
    tone = np.sin(np.arange(int(2.5 * 16000)) / 16000 * 2 * np.pi * 220).astype(np.float32)
    video = DecodedVideo(Path("synthetic.mp4"), "v", "p", info, np.arange(n) / fps,
                         0.3 * tone)
    out = audio.extract(video)
    has = out.arrays["has_audio"]
    np.testing.assert_array_equal(has, video.timestamps < 2.5)
    assert out.attrs["audio"].startswith("audio stream shorter than the video")
    emb = out.arrays["embedding"]
    assert not emb[~has].any() and np.abs(emb[has]).sum(axis=1).min() > 0
