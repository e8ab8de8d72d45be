"""Decoding: every frame once, with its own timestamp; audio at 16 kHz mono."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bahfs.sample.script import VideoPlan
from extractors.decode import AUDIO_RATE, decode_audio, open_video
from store.errors import VideoDecodeError

Media = dict[str, tuple[Path, VideoPlan | None]]


@pytest.mark.parametrize("key,fps", [("speech24", 24.0), ("fps30", 30.0)])
def test_every_frame_once_with_its_timestamp(media: Media, key: str, fps: float) -> None:
    path, plan = media[key]
    assert plan is not None
    stream = open_video(path, batch=17)
    frames = sum(b.shape[0] for b in stream)
    assert frames == stream.n_decoded == plan.n_frames == len(stream.timestamps)
    np.testing.assert_allclose(stream.timestamps, np.arange(frames) / fps, atol=1e-4)


def test_variable_frame_rate_keeps_real_times(media: Media) -> None:
    stream = open_video(media["vfr"][0])
    for _ in stream:
        pass
    t = np.array(stream.timestamps)
    assert len(t) == 48
    gaps = np.diff(t)
    assert gaps.max() == pytest.approx(0.5 + 1 / 24, abs=1e-3)
    assert int(np.argmax(gaps)) == 10


def test_audio_is_mono_16k_and_as_long_as_the_video(media: Media) -> None:
    path, plan = media["speech24"]
    assert plan is not None
    audio = decode_audio(path)
    assert audio is not None and audio.dtype == np.float32
    assert abs(audio.size / AUDIO_RATE - plan.duration_s) < 0.1
    assert decode_audio(media["silent"][0]) is None


@pytest.mark.parametrize("key,needle", [("empty", "empty"), ("garbage", "ffprobe cannot")])
def test_broken_files_raise_naming_the_file(media: Media, key: str, needle: str) -> None:
    path = media[key][0]
    with pytest.raises(VideoDecodeError, match=needle) as info:
        open_video(path)
    assert str(path) in str(info.value)
