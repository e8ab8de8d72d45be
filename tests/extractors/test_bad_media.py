"""Bad and odd media through the real extraction path (``extract_all``): each file is
generated with ffmpeg here (no committed media), once per module, and either
extracts with the frame count an independent decode gives (``ffprobe
-count_frames``) and the right masks, or raises a ``VideoDecodeError`` naming the
file. ``docs/reliability.md`` lists every case with its outcome."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from extractors.audio import LogMelExtractor
from extractors.base import Extractor
from extractors.pipeline import extract_all
from store.errors import VideoDecodeError
from store.features import VideoFeatures
from store.media import probe_video

pytestmark = pytest.mark.slow

SRC = "testsrc=size=64x48:rate=10"
H264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")
TONE = "sine=frequency=440:sample_rate=16000"
UNICODE_NAME = "vidéo Ünïcode 1.mp4"


def ffmpeg(*args: str | Path, stdin: bytes | None = None) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *map(str, args)], input=stdin, check=True)


def decoded_frames(path: Path) -> int:
    """Frames an independent full decode gives (ffprobe, not bahfs's decoder)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
                          "-show_entries", "stream=nb_read_frames", "-of", "csv=p=0",
                          str(path)], capture_output=True, text=True, check=True).stdout
    return int(out.strip().rstrip(","))


def astronaut() -> np.ndarray:
    """The sample generator's face: head and shoulders of skimage's astronaut, 300x260."""
    from skimage import data

    crop: np.ndarray = np.asarray(data.astronaut())[0:300, 100:360]  # type: ignore[no-untyped-call]
    return np.ascontiguousarray(crop)


def still(out: Path, frame: np.ndarray, n: int = 10) -> None:
    """``n`` copies of ``frame`` at 10 fps, H.264 (even sizes)."""
    h, w = frame.shape[:2]
    ffmpeg("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", "10", "-i", "pipe:0",
           *H264, out, stdin=np.tile(frame, (n, 1, 1)).tobytes())


def rotate_copy(src: Path, out: Path, ccw: int) -> None:
    """``src`` with a display rotation of ``ccw`` degrees counter-clockwise, stream-copied.
    The ``rotate`` tag's sign differs across ffmpeg versions (5.1 writes it as
    counter-clockwise) and ffmpeg >= 6 has ``-display_rotation``; keep what gives ``ccw``."""
    tries: list[list[str | Path]] = [
        ["-i", src, "-c", "copy", "-metadata:s:v:0", f"rotate={deg}", out]
        for deg in (ccw, 360 - ccw)]
    tries.append(["-display_rotation", str(ccw), "-i", src, "-c", "copy", out])
    for args in tries:
        try:
            ffmpeg(*args)
        except subprocess.CalledProcessError:
            continue
        if probe_video(out).rotation == ccw:
            return
    raise RuntimeError(f"this ffmpeg cannot write a {ccw} degree display rotation")


def lie_about_length(src: Path, out: Path, factor: int = 10) -> None:
    """``src`` with the movie header (mvhd) claiming ``factor`` times its duration."""
    data = bytearray(src.read_bytes())
    i = data.find(b"mvhd")
    fmt, off = (">Q", i + 4 + 4 + 16 + 4) if data[i + 4] == 1 else (">I", i + 4 + 4 + 8 + 4)
    (duration,) = struct.unpack_from(fmt, data, off)
    struct.pack_into(fmt, data, off, duration * factor)
    out.write_bytes(bytes(data))


def corrupt_middle(src: Path, out: Path, n: int = 1500) -> None:
    """``src`` with ``n`` random bytes written over the middle of its media data."""
    data = bytearray(src.read_bytes())
    mid = (data.find(b"mdat") + len(data)) // 2
    data[mid:mid + n] = np.random.default_rng(0).bytes(n)
    out.write_bytes(bytes(data))


def speech(out: Path) -> None:
    """A short spoken answer (espeak-ng) over the test pattern."""
    wav = out.with_suffix(".wav")
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav),
                    "I think I would probably say yes to that question."], check=True)
    ffmpeg("-f", "lavfi", "-i", SRC, "-i", wav, "-af", "apad", "-t", "5", *H264, "-c:a", "aac",
           out)


def lavfi(source: str) -> tuple[str, ...]:
    return ("-f", "lavfi", "-i", source)


def build(d: Path) -> dict[str, Path]:
    p = {k: d / f"{k}.mp4" for k in (
        "good", "zero_bytes", "truncated", "header_lies", "corrupt", "no_audio", "silent",
        "fps30", "fps60", "vfr", "mono_8k", "surround_51", "short", "odd_444", "odd_mpeg4",
        "plain160", "rotated", "astronaut_sideways", "astronaut_rotated", "two_faces",
        "no_face", "long", "speech")}
    p |= {"audio_only": d / "audio_only.m4a", "vp8_opus": d / "vp8_opus.webm",
          "vp9_opus": d / "vp9_opus.webm", "unicode": d / UNICODE_NAME}
    ffmpeg(*lavfi(SRC), *lavfi(TONE), "-t", "2", *H264, "-c:a", "aac", "-shortest",
           "-movflags", "+faststart", p["good"])
    p["zero_bytes"].write_bytes(b"")
    p["truncated"].write_bytes(p["good"].read_bytes()[:6000])
    lie_about_length(p["good"], p["header_lies"])
    ffmpeg(*lavfi("testsrc=size=160x96:rate=10"), "-t", "3", *H264, "-movflags", "+faststart",
           p["plain160"])
    corrupt_middle(p["plain160"], p["corrupt"])
    ffmpeg(*lavfi(TONE), "-t", "1", "-c:a", "aac", p["audio_only"])
    ffmpeg(*lavfi(SRC), "-t", "1", *H264, p["no_audio"])
    ffmpeg(*lavfi(SRC), *lavfi("anullsrc=r=16000:cl=mono"), "-t", "1", *H264, "-c:a", "aac",
           p["silent"])
    for fps in (30, 60):
        ffmpeg(*lavfi(f"testsrc=size=64x48:rate={fps}"), "-t", "1", *H264, p[f"fps{fps}"])
    ffmpeg(*lavfi("testsrc=size=64x48:rate=10:duration=1"),  # 10 frames at 10 fps, 30 at 30
           *lavfi("testsrc=size=64x48:rate=30:duration=1"), "-filter_complex",
           "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]", "-fps_mode", "vfr", *H264, p["vfr"])
    for key, codec in (("vp8_opus", "libvpx"), ("vp9_opus", "libvpx-vp9")):
        ffmpeg(*lavfi(SRC), *lavfi("sine=frequency=440:sample_rate=48000"), "-t", "1",
               "-c:v", codec, "-pix_fmt", "yuv420p", "-c:a", "libopus", p[key])
    ffmpeg(*lavfi(SRC), *lavfi("sine=frequency=440:sample_rate=8000"), "-t", "1", *H264,
           "-c:a", "aac", "-ac", "1", p["mono_8k"])
    ffmpeg(*lavfi(SRC), *lavfi("sine=frequency=440:sample_rate=48000"), "-t", "1", *H264,
           "-c:a", "aac", "-ac", "6", p["surround_51"])
    ffmpeg(*lavfi(SRC), "-t", "0.3", *H264, p["short"])
    ffmpeg(*lavfi("testsrc=size=161x97:rate=10"), "-t", "1", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv444p", p["odd_444"])  # 4:2:0 needs even
    ffmpeg(*lavfi("testsrc=size=161x97:rate=10"), "-t", "1", "-c:v", "mpeg4", p["odd_mpeg4"])
    rotate_copy(p["plain160"], p["rotated"], 90)
    face = astronaut()
    still(p["astronaut_sideways"], np.rot90(face, k=-1))  # stored turned clockwise ...
    rotate_copy(p["astronaut_sideways"], p["astronaut_rotated"], 90)  # ... shown upright
    still(p["two_faces"], np.concatenate([face, face], axis=1))
    ffmpeg(*lavfi("testsrc=size=320x240:rate=10"), "-t", "1", *H264, p["no_face"])
    ffmpeg(*lavfi("testsrc=size=64x48:rate=5"), *lavfi(TONE), "-t", "180", *H264,
           "-c:a", "aac", "-b:a", "24k", "-shortest", p["long"])
    p["unicode"].write_bytes(p["good"].read_bytes())
    speech(p["speech"])
    return p


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build(tmp_path_factory.mktemp("bad media"))


@pytest.fixture(scope="module")
def logmel() -> LogMelExtractor:
    return LogMelExtractor()


def one(path: Path, extractor: Extractor) -> VideoFeatures:
    return extract_all(path, [extractor])[0]


@pytest.mark.parametrize("key,needle", [
    ("zero_bytes", "empty"),
    ("truncated", "truncated"),
    ("audio_only", "no video stream"),
    ("corrupt", r"decoded \d+ frames of the 30 the file holds"),
])
def test_unusable_files_raise_naming_the_file(bad: dict[str, Path], logmel: LogMelExtractor,
                                              key: str, needle: str) -> None:
    with pytest.raises(VideoDecodeError, match=needle) as info:
        one(bad[key], logmel)
    assert f"file: {bad[key]}" in str(info.value)


@pytest.mark.parametrize("key,frames,audio", [
    ("good", 20, True), ("header_lies", 20, True), ("no_audio", 10, False),
    ("silent", 10, True), ("fps30", 30, False), ("fps60", 60, False), ("vfr", 40, False),
    ("vp8_opus", 10, True), ("vp9_opus", 10, True), ("mono_8k", 10, True),
    ("surround_51", 10, True), ("short", 3, False), ("odd_444", 10, False),
    ("odd_mpeg4", 10, False), ("rotated", 30, False), ("unicode", 20, True),
])
def test_odd_but_valid_files_give_one_row_per_decoded_frame(
        bad: dict[str, Path], logmel: LogMelExtractor, key: str, frames: int,
        audio: bool) -> None:
    out = one(bad[key], logmel)
    assert out.n_frames == frames == decoded_frames(bad[key])
    assert all(a.shape[0] == frames for a in out.arrays.values())
    assert np.all(np.diff(out.timestamps) > 0)
    assert out.arrays["has_audio"].all() if audio else not out.arrays["has_audio"].any()
    assert ("audio" in out.attrs) is not audio


def test_frame_times_follow_the_rate(bad: dict[str, Path], logmel: LogMelExtractor) -> None:
    for key, gap in (("fps30", 1 / 30), ("fps60", 1 / 60), ("short", 0.1)):
        np.testing.assert_allclose(np.diff(one(bad[key], logmel).timestamps), gap, atol=1e-3)
    vfr = np.diff(one(bad["vfr"], logmel).timestamps)
    np.testing.assert_allclose(vfr[:9], 0.1, atol=1e-3)
    np.testing.assert_allclose(vfr[10:], 1 / 30, atol=1e-3)


def test_a_header_that_lies_about_the_length_is_not_believed(bad: dict[str, Path]) -> None:
    info = probe_video(bad["header_lies"])
    assert (info.n_frames, info.fps, info.duration_s) == (20, 10.0, 2.0)


def test_odd_sizes_and_rotation_decode_at_the_displayed_size(bad: dict[str, Path]) -> None:
    from extractors.decode import open_video

    for key, shape in (("odd_444", (97, 161)), ("odd_mpeg4", (97, 161)),
                       ("rotated", (160, 96)), ("astronaut_rotated", (300, 260))):
        frames = np.concatenate(list(open_video(bad[key])))
        assert frames.shape[1:3] == shape, key


def test_audio_streams_of_any_rate_and_layout_become_16k_mono(bad: dict[str, Path]) -> None:
    from extractors.decode import AUDIO_RATE, decode_audio

    for key in ("mono_8k", "surround_51", "vp8_opus", "good"):
        audio = decode_audio(bad[key])
        seconds = 2.0 if key == "good" else 1.0
        assert audio is not None and abs(audio.size / AUDIO_RATE - seconds) < 0.05
        assert 0.1 < float(np.abs(audio).max()) <= 1.0  # the tone, not silence or clipping


def test_silence_and_no_audio_are_told_apart(bad: dict[str, Path],
                                             logmel: LogMelExtractor) -> None:
    silent, none = one(bad["silent"], logmel), one(bad["no_audio"], logmel)
    assert silent.arrays["has_audio"].all() and not silent.arrays["voiced"].any()
    assert "audio" not in silent.attrs
    assert not none.arrays["has_audio"].any() and none.attrs["audio"] == "no audio stream"


def test_faces_where_there_are_faces(bad: dict[str, Path]) -> None:
    from extractors.face import FaceExtractor

    face = FaceExtractor()
    two = one(bad["two_faces"], face).arrays
    assert two["has_face"].all()  # the main face of two: one box, on one of them
    x0, _, x1, _ = two["box"][0]
    assert x1 - x0 < 260 and (x1 <= 280 or x0 >= 240)
    assert not one(bad["no_face"], face).arrays["has_face"].any()
    upright = one(bad["astronaut_rotated"], face).arrays  # stored sideways, shown upright
    points = upright["landmarks"].reshape(-1, 5, 2)
    eyes_y, mouth_y = points[:, :2, 1].mean(1), points[:, 3:, 1].mean(1)
    assert upright["has_face"].all() and (mouth_y - eyes_y > 20).all()  # eyes above mouth


def test_words_only_where_speech_is(bad: dict[str, Path], logmel: LogMelExtractor) -> None:
    from extractors.speech import SpeechExtractor

    words = SpeechExtractor()
    spoken = extract_all(bad["speech"], [words, logmel])
    assert spoken[0].arrays["has_word"].any() and spoken[1].arrays["has_audio"].all()
    assert "yes" in spoken[0].attrs["transcript"].lower()
    for key in ("silent", "no_audio"):
        assert not one(bad[key], words).arrays["has_word"].any()


def test_several_minutes_at_a_low_rate(bad: dict[str, Path], logmel: LogMelExtractor) -> None:
    out = one(bad["long"], logmel)
    assert out.n_frames == probe_video(bad["long"]).n_frames == 900
    assert out.timestamps[-1] == pytest.approx(179.8, abs=1e-3)
    assert out.arrays["has_audio"].all() and out.arrays["logmel"].shape == (900, 64)
