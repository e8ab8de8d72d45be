"""Decoding: every frame once, with its own timestamp; audio at 16 kHz mono."""

from __future__ import annotations

import subprocess
from dataclasses import replace
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


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 160x96 test pattern (asymmetric), and copies of it that say 'rotate 90 / 270'
    in their metadata without re-encoding (ffmpeg 5.1: the ``rotate`` tag, written as
    a display matrix)."""
    d = tmp_path_factory.mktemp("rotated")
    out = {"plain": d / "plain.mp4"}
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=160x96:rate=10", "-t", "1", "-c:v", "libx264",
            "-pix_fmt", "yuv420p", str(out["plain"]))
    for deg in ("90", "270"):
        out[deg] = d / f"rot{deg}.mp4"
        _ffmpeg("-i", str(out["plain"]), "-c", "copy", "-metadata:s:v:0", f"rotate={deg}",
                str(out[deg]))
    return out


def _frames(path: Path) -> np.ndarray:
    return np.concatenate(list(open_video(path)))


def _transposed(path: Path, how: str, shape: tuple[int, int]) -> np.ndarray:
    raw = subprocess.run(["ffmpeg", "-v", "error", "-noautorotate", "-i", str(path), "-vf",
                          f"transpose={how}", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, *shape, 3)


@pytest.mark.parametrize("deg,how,k", [("90", "cclock", 1), ("270", "clock", -1)])
def test_rotated_video_decodes_upright_with_the_display_size(
        rotated: dict[str, Path], deg: str, how: str, k: int) -> None:
    plain = _frames(rotated["plain"])
    assert plain.shape == (10, 96, 160, 3)
    stream = open_video(rotated[deg])
    assert (stream.info.width, stream.info.height, stream.info.rotation) == (96, 160, int(deg))
    frames = np.concatenate(list(stream))
    assert frames.shape == (10, 160, 96, 3) and len(stream.timestamps) == 10
    # exactly what ffmpeg's own transpose of the unrotated source gives ...
    np.testing.assert_array_equal(frames, _transposed(rotated["plain"], how, (160, 96)))
    # ... which is the pattern turned a quarter, counter-clockwise for 90 (chroma
    # is subsampled before the turn, so colours differ by a few levels at edges)
    turned = np.rot90(plain, k=k, axes=(1, 2)).astype(int)
    assert np.abs(frames.astype(int) - turned).mean() < 3
    assert np.abs(frames.astype(int) - np.rot90(plain, k=-k, axes=(1, 2))).mean() > 30


def test_a_frame_of_another_size_fails_the_decode(rotated: dict[str, Path]) -> None:
    """A probe that disagrees with what ffmpeg decodes (the old bug: coded size read
    for a rotated video) raises instead of yielding scrambled frames."""
    stream = open_video(rotated["90"])
    stream.info = replace(stream.info, width=160, height=96)
    with pytest.raises(VideoDecodeError, match="every frame 160x96") as info:
        for _ in stream:
            pass
    assert str(rotated["90"]) in str(info.value)


def test_reading_ahead_gives_the_same_frames_and_stops_cleanly(
        media: dict[str, tuple[Path, object]]) -> None:
    import threading

    from extractors.decode import open_video

    path = media["speech24"][0]
    plain = open_video(path, batch=16, prefetch=0)
    ahead = open_video(path, batch=16, prefetch=3)
    a, b = list(plain), list(ahead)
    assert len(a) == len(b) > 2
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert plain.timestamps == ahead.timestamps and ahead.n_decoded == plain.n_decoded
    before = threading.active_count()
    stream = iter(open_video(path, batch=8, prefetch=2))
    next(stream)
    stream.close()  # the caller stops after one batch: ffmpeg and the thread end
    assert threading.active_count() <= before
