"""Prosody: openSMILE's eGeMAPS descriptors per frame agree with openSMILE run on the
same audio; pause lengths on a soundtrack whose pauses are known."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from bahfs.sample.script import VideoPlan
from extractors.base import DecodedVideo
from extractors.decode import decode_audio, open_video
from extractors.prosody import ProsodyExtractor
from store.errors import ConfigError
from store.media import VideoInfo

opensmile = pytest.importorskip("opensmile", reason="the prosody extra (bash .ci/setup.sh)")

Media = dict[str, tuple[Path, VideoPlan | None]]


@pytest.fixture(scope="module")
def prosody() -> ProsodyExtractor:
    return ProsodyExtractor()


def _decoded(path: Path) -> DecodedVideo:
    stream = open_video(path)
    for _ in stream:
        pass
    return DecodedVideo(path, path.stem, "P", stream.info,
                        np.asarray(stream.timestamps, np.float64), decode_audio(path, stream.info))


def test_descriptors_agree_with_opensmile_on_the_same_audio(
        media: Media, prosody: ProsodyExtractor) -> None:
    video = _decoded(media["speech24"][0])
    assert video.audio is not None
    out = prosody.extract(video).arrays
    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.LowLevelDescriptors)
    df = smile.process_signal(video.audio, 16_000)
    assert list(df.columns) == prosody.spec().extra["columns"]["lld"]
    mid = np.array([(s + e).total_seconds() / 2 for s, e in df.index])
    values = df.to_numpy()
    f0 = values[:, list(df.columns).index("F0semitoneFrom27.5Hz_sma3nz")]
    nz = np.array([c.endswith("_sma3nz") for c in df.columns])
    period = 1 / video.info.fps
    checked = 0
    for i, t in enumerate(video.timestamps):
        if not out["has_audio"][i]:
            continue
        rows = (mid >= t) & (mid < t + period)
        voiced = rows & (f0 > 0)
        want = np.where(nz, values[voiced].mean(axis=0) if voiced.any() else 0.0,
                        values[rows].mean(axis=0))
        np.testing.assert_allclose(out["lld"][i], want, rtol=1e-5, atol=1e-5, err_msg=str(i))
        assert out["voicing"][i] == pytest.approx(voiced.sum() / rows.sum(), abs=1e-6)
        checked += 1
    assert checked > 0.9 * video.n_frames
    assert 0.2 < out["voicing"].mean() < 0.9  # speech with pauses between utterances
    assert out["lld"][out["voicing"] > 0.5, 10].mean() > 20  # F0 in semitones over 27.5 Hz


def _tone(seconds: float, f0: float = 140.0) -> np.ndarray:
    t = np.arange(round(seconds * 16_000)) / 16_000
    return sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6)).astype(np.float32) * 0.2


def test_pause_length_and_time_since_voice(prosody: ProsodyExtractor) -> None:
    gap = np.zeros(round(0.8 * 16_000), np.float32)
    audio = np.concatenate([_tone(1.0), gap, _tone(1.0)])
    times = np.arange(70) / 25.0  # 2.8 s at 25 fps
    info = VideoInfo(path="synthetic", width=64, height=48, fps=25.0, n_frames=70,
                     duration_s=2.8, has_audio=True)
    video = DecodedVideo(Path("synthetic"), "v", "P", info, times, audio)
    out = prosody.extract(video).arrays
    in_gap = (times > 1.15) & (times < 1.6)
    assert out["voicing"][times < 0.9].mean() > 0.9 and out["voicing"][in_gap].max() == 0
    assert np.all(np.abs(out["pause_s"][in_gap] - 0.8) < 0.15), out["pause_s"][in_gap]
    assert (out["pause_s"][(times > 0.2) & (times < 0.8)] == 0).all()
    since = out["since_voiced_s"][in_gap]
    np.testing.assert_allclose(np.diff(since), 0.04, atol=0.011)  # grows with time
    assert abs(since[0] - (times[in_gap][0] + 0.02 - 1.0)) < 0.1


def test_a_video_without_audio_gives_zeros(media: Media, prosody: ProsodyExtractor) -> None:
    out = prosody.extract(_decoded(media["silent"][0])).arrays
    assert not out["has_audio"].any() and not out["lld"].any() and not out["pause_s"].any()


def test_without_opensmile_it_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opensmile", None)  # import fails as when absent
    with pytest.raises(ConfigError, match=r"bahfs\[prosody\].*research licence"):
        ProsodyExtractor()
