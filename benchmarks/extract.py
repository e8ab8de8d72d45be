"""Extraction speed on this CPU: per extractor and end to end, against a naive
one-frame-at-a-time loop over the same models, in the same run.

    .venv/bin/python -m benchmarks.extract DATASET [--videos 4] [--naive-frames 48]

DATASET is a generated release (`bahfs sample-data`). Batched: the extractors as
bahfs runs them (one decode shared by all, batched ONNX calls, vectorised
pooling). Naive: the same models called once per frame, each frame decoded and
processed on its own (measured on the first --naive-frames frames of each video;
frames/s are comparable). Real-time factor = video seconds per wall second.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from extractors.audio import LogMelExtractor, log_mel_frames
from extractors.audio_embed import WhisperEncoderExtractor
from extractors.base import DecodedVideo, frame_windows, gather
from extractors.decode import AUDIO_RATE, decode_audio, open_video
from extractors.face import FaceExtractor
from extractors.pipeline import extract_all
from extractors.speech import SpeechExtractor
from store.release import codebook as cb


def decoded(path: Path) -> tuple[DecodedVideo, np.ndarray]:
    stream = open_video(path)
    frames = np.concatenate(list(stream))
    return DecodedVideo(path, path.stem, "P", stream.info, np.array(stream.timestamps),
                        decode_audio(path, stream.info)), frames


def naive_face(face: FaceExtractor, frames: np.ndarray) -> None:
    for f in frames:
        _, marks, _, found = face.detector.detect(f[None])
        if found[0]:
            face.model.run(f[None], marks)


def naive_logmel(mel: LogMelExtractor, video: DecodedVideo, k: int) -> None:
    starts, length = frame_windows(video.timestamps[:k], AUDIO_RATE, mel.config.window_s)
    audio = video.audio if video.audio is not None else np.zeros(AUDIO_RATE, np.float32)
    for s in starts:
        log_mel_frames(gather(audio, np.array([s]), length)[0], mel.config).mean(0)


def naive_audio(enc: WhisperEncoderExtractor, video: DecodedVideo, k: int) -> None:
    starts, length = frame_windows(video.timestamps[:k], AUDIO_RATE, 1.0)
    audio = video.audio if video.audio is not None else np.zeros(AUDIO_RATE, np.float32)
    for s in starts:  # one encoder call per frame, on a 1 s context
        enc._encode(gather(audio, np.array([s]), length)[0])


def naive_words(words: SpeechExtractor, video: DecodedVideo) -> None:
    transcript = words.transcribe(video.audio) if video.audio is not None else {"words": []}
    for w in transcript["words"]:  # one embedding call per word, per frame placement loop
        words.embed_words([w["word"]])
    for t in video.timestamps:
        [w for w in transcript["words"] if w["start"] <= t < w["end"]]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--naive-frames", type=int, default=48)
    args = ap.parse_args()
    paths = sorted((args.dataset / cb.VIDEOS_DIR).rglob("*.mp4"))[: args.videos]
    t0 = time.perf_counter()
    ex: dict[str, Any] = {"face": FaceExtractor(), "logmel": LogMelExtractor(),
                          "audio": WhisperEncoderExtractor(), "words": SpeechExtractor()}
    print(f"model loading: {time.perf_counter() - t0:.1f} s (once per worker)")
    batched = dict.fromkeys(ex, 0.0)
    naive = dict.fromkeys(ex, 0.0)
    naive_n = dict.fromkeys(ex, 0)
    frames_total, seconds_total, e2e, decode_s = 0, 0.0, 0.0, 0.0
    for path in paths:
        t = time.perf_counter()
        extract_all(path, list(ex.values()))
        e2e += time.perf_counter() - t
        t = time.perf_counter()
        video, frames = decoded(path)
        decode_s += time.perf_counter() - t
        frames_total += video.n_frames
        seconds_total += video.n_frames / video.info.fps
        for name, e in ex.items():
            t = time.perf_counter()
            e.extract(video) if name != "face" else e.finish(
                _consume(e, frames), video)
            batched[name] += time.perf_counter() - t
        k = min(args.naive_frames, video.n_frames)
        jobs = {"face": partial(naive_face, ex["face"], frames[:k]),
                "logmel": partial(naive_logmel, ex["logmel"], video, k),
                "audio": partial(naive_audio, ex["audio"], video, k),
                "words": partial(naive_words, ex["words"], video)}
        for name, job in jobs.items():
            t = time.perf_counter()
            job()
            naive[name] += time.perf_counter() - t
            naive_n[name] += video.n_frames if name == "words" else k
    print(f"{len(paths)} videos, {frames_total} frames, {seconds_total:.1f} s of video; "
          f"decode alone {frames_total / decode_s:.0f} frames/s")
    print(f"{'extractor':<10}{'batched f/s':>14}{'naive f/s':>12}{'speed-up':>10}")
    for name in ex:
        b = frames_total / batched[name]
        n = naive_n[name] / naive[name]
        print(f"{name:<10}{b:>14.1f}{n:>12.1f}{b / n:>9.1f}x")
    naive_e2e = sum(naive[n] / naive_n[n] for n in ex) * frames_total
    print(f"end to end (one decode, all four): {frames_total / e2e:.1f} frames/s, "
          f"real-time factor {seconds_total / e2e:.2f}; naive loop "
          f"{frames_total / naive_e2e:.1f} frames/s; speed-up {naive_e2e / e2e:.1f}x")


def _consume(face: FaceExtractor, frames: np.ndarray) -> dict[str, Any]:
    state: dict[str, Any] = {}
    face.consume(state, frames)
    return state


if __name__ == "__main__":
    main()
