"""The log-mel extractor: one row per decoded frame, speech where the plan put it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bahfs.sample.script import VideoPlan
from extractors import get_extractor
from extractors.audio import LogMelConfig, LogMelExtractor
from extractors.base import DecodedVideo
from extractors.decode import AUDIO_RATE, decode_audio, open_video
from store.errors import ConfigError
from store.media import VideoInfo

Media = dict[str, tuple[Path, VideoPlan | None]]


def decoded(path: Path) -> DecodedVideo:
    stream = open_video(path)
    for _ in stream:
        pass
    return DecodedVideo(path, path.stem, "P1", stream.info, np.array(stream.timestamps),
                        decode_audio(path, stream.info))


@pytest.mark.parametrize("key", ["speech24", "fps30", "silent"])
def test_rows_equal_decoded_frames(media: Media, key: str) -> None:
    video = decoded(media[key][0])
    out = LogMelExtractor().extract(video)
    assert out.n_frames == video.n_frames
    for arr in out.arrays.values():
        assert arr.shape[0] == video.n_frames


def test_voice_activity_follows_the_speech(media: Media) -> None:
    path, plan = media["speech24"]
    assert plan is not None
    out = LogMelExtractor().extract(decoded(path)).arrays
    t = np.arange(plan.n_frames) / plan.fps
    in_speech = np.zeros(plan.n_frames, bool)
    for u in plan.utterances:
        in_speech |= (t >= u.start_s + 0.3) & (t <= u.start_s + 1.0)  # surely speaking
    lead = t < min(u.start_s for u in plan.utterances) - 0.1  # before anyone speaks
    assert out["voiced"][in_speech].mean() > 0.8
    assert out["voiced"][lead].mean() < 0.1
    assert out["energy_db"][in_speech].mean() > out["energy_db"][lead].mean() + 20


def test_no_audio_gives_zeros_not_an_error(media: Media) -> None:
    out = LogMelExtractor().extract(decoded(media["silent"][0]))
    arrays = out.arrays
    assert not arrays["voiced"].any() and float(np.abs(arrays["logmel"]).sum()) == 0.0
    assert arrays["has_audio"].dtype == bool and not arrays["has_audio"].any()
    assert out.attrs["audio"] == "no audio stream"


def test_every_frame_of_a_full_soundtrack_has_audio(media: Media) -> None:
    out = LogMelExtractor().extract(decoded(media["speech24"][0]))
    assert out.arrays["has_audio"].shape == (out.n_frames,) and out.arrays["has_audio"].all()
    assert "audio" not in out.attrs


def short_soundtrack(seconds: float, audio_s: float, fps: float = 24.0) -> DecodedVideo:
    """A synthetic video of ``seconds`` whose soundtrack (1 s of near silence, then a
    loud tone) stops at ``audio_s``."""
    n = int(seconds * fps)
    info = VideoInfo("synthetic", seconds, fps, n, 64, 48, True)
    t = np.arange(int(audio_s * AUDIO_RATE)) / AUDIO_RATE
    tone = np.where(t < 1.0, 1e-4, 0.3) * np.sin(2 * np.pi * 220 * t)
    tone = tone.astype(np.float32)
    return DecodedVideo(Path("synthetic.mp4"), "v", "p", info, np.arange(n) / fps, tone)


def test_frames_past_the_end_of_the_soundtrack_have_no_audio() -> None:
    video = short_soundtrack(4.0, 2.5)
    out = LogMelExtractor().extract(video)
    has = out.arrays["has_audio"]
    np.testing.assert_array_equal(has, video.timestamps < 2.5)
    assert out.attrs["audio"].startswith("audio stream shorter than the video")
    assert "2.500 s" in out.attrs["audio"]
    voiced, t = out.arrays["voiced"], video.timestamps
    assert not voiced[~has].any() and voiced[(t > 1.2) & has].mean() > 0.9
    assert not out.arrays["logmel"][~has].any()
    assert (out.arrays["energy_db"][~has] == -120.0).all()


def test_registry_and_frozen_config() -> None:
    assert get_extractor("logmel") is LogMelExtractor
    spec = LogMelExtractor(LogMelConfig(n_mels=40)).spec()
    assert spec.extractor == "logmel" and spec.config["n_mels"] == 40
    assert [a.name for a in spec.arrays] == ["logmel", "energy_db", "voiced", "has_audio"]
    assert spec.id != LogMelExtractor().spec().id  # another config, another feature set
    with pytest.raises(ConfigError, match="unknown extractor"):
        get_extractor("nope")
    with pytest.raises(ConfigError, match="frozen"):
        LogMelExtractor({"n_mels": 40})


def test_extracted_features_land_in_the_store(sample_release: Path, tmp_path: Path) -> None:
    """Real decoding -> extractor -> store: rows match the videos table; verify is clean."""
    from store.ingest import ingest
    from store.reader import FeatureReader
    from store.tables import read_table
    from store.verify import verify_store
    from store.writer import FeatureWriter

    store = tmp_path / "store"
    ingest(sample_release, store)
    writer, extractor = FeatureWriter(store), LogMelExtractor()
    videos = read_table(store, "videos")
    for vid, pid, rel in videos.select("video_id", "participant_id", "path").iter_rows():
        video = decoded(sample_release / rel)
        video = DecodedVideo(video.path, vid, pid, video.info, video.timestamps, video.audio)
        assert writer.write(extractor.extract(video)).outcome == "written"
    assert verify_store(store) == []
    reader = FeatureReader(store)
    fs = reader.resolve("logmel")
    for vid, n in videos.select("video_id", "n_frames").iter_rows():
        assert reader.video(fs, vid)["logmel"].shape == (n, 64)
