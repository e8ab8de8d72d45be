"""Extraction speed on a device: per extractor and end to end, against a naive
one-frame-at-a-time loop over the same models, in the same run.

    .venv/bin/python -m benchmarks.extract DATASET [--videos 4] [--naive-frames 48]
        [--device auto|cpu|cuda|cuda:N] [--resize 640x480] [--batch 32]
        [--compare-stride]

--compare-stride measures instead the face path alone and end to end with face
detection on every frame (the previous code) against the default keyframe stride,
in CPU time against ffmpeg's decode of the same files (benchmarks/face_stride.py).

--device is handed to every extractor (default: $BAHFS_DEVICE, else auto); each
extractor prints the device it actually runs on. On CUDA, GPU
utilisation and memory are sampled once a second by `nvidia-smi ... -l 1` in the
background during the end-to-end pass. --resize re-encodes the chosen videos to
WxH first (H.264, sound copied), e.g. 640x480 webcam size.

DATASET is a generated release (`bahfs sample-data`). Batched: the extractors as
bahfs runs them (one decode shared by all, batched ONNX calls, vectorised
pooling). Naive: the same models called once per frame, each frame decoded and
processed on its own (measured on the first --naive-frames frames of each video;
frames/s are comparable). Real-time factor = video seconds per wall second.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import threading
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
from extractors.runtime import Runtime, threads_per_process
from extractors.speech import SpeechExtractor
from store.devices import DEVICE_ENV, parse_device
from store.release import codebook as cb

#: the issue's GPU targets (H100): end to end, the face path on 640x480, the full release
TARGET_E2E_FPS = 800.0
TARGET_FACE_FPS = 2000.0
BAH_FRAMES = 916_618
TARGET_BAH_MIN = 20.0


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
    ap.add_argument("--device", default=os.environ.get(DEVICE_ENV) or "auto",
                    help="auto, cpu, cuda or cuda:N")
    ap.add_argument("--resize", default="", help="re-encode the videos to WxH first")
    ap.add_argument("--batch", type=int, default=32, help="frames decoded per batch")
    ap.add_argument("--compare-stride", action="store_true",
                    help="only the face path and end to end with detection on every frame "
                         "against the default keyframe stride, in CPU time (face_stride.py)")
    args = ap.parse_args()
    want = parse_device(args.device)  # a bad value stops here, before any model loads
    paths = sorted((args.dataset / cb.VIDEOS_DIR).rglob("*.mp4"))[: args.videos]
    with tempfile.TemporaryDirectory(prefix="bahfs-bench-") as tmp:
        if args.resize:
            paths = [resized(p, args.resize, Path(tmp) / f"{i}.mp4")
                     for i, p in enumerate(paths)]
        if args.compare_stride:
            from benchmarks.face_stride import previous_vs_default

            rt = Runtime(want, threads_per_process())
            previous_vs_default(paths, [LogMelExtractor(), WhisperEncoderExtractor(runtime=rt),
                                        SpeechExtractor(runtime=rt)], rt)
        else:
            run(paths, args, str(want))


def run(paths: list[Path], args: argparse.Namespace, want: str) -> None:
    t0 = time.perf_counter()
    rt = Runtime(parse_device(want), threads_per_process())
    ex: dict[str, Any] = {"face": FaceExtractor(runtime=rt), "logmel": LogMelExtractor(),
                          "audio": WhisperEncoderExtractor(runtime=rt),
                          "words": SpeechExtractor(runtime=rt)}
    print(f"model loading: {time.perf_counter() - t0:.1f} s (once per worker)")
    devices = {name: str(e.device) for name, e in ex.items()}
    print(f"--device {want}: " + ", ".join(f"{n} on {d}" for n, d in devices.items()))
    on_cuda = any(d.startswith("cuda") for d in devices.values())
    if not on_cuda and want in ("cpu", "auto"):
        print(same_as_auto())
    sampler = GpuSampler(parse_device(want).index if on_cuda else -1)
    batched = dict.fromkeys(ex, 0.0)
    naive = dict.fromkeys(ex, 0.0)
    naive_n = dict.fromkeys(ex, 0)
    frames_total, seconds_total, e2e, decode_s = 0, 0.0, 0.0, 0.0
    sizes: set[str] = set()
    for path in paths:
        with sampler:
            t = time.perf_counter()
            extract_all(path, list(ex.values()), batch=args.batch)
            e2e += time.perf_counter() - t
        t = time.perf_counter()
        video, frames = decoded(path)
        decode_s += time.perf_counter() - t
        frames_total += video.n_frames
        seconds_total += video.n_frames / video.info.fps
        sizes.add(f"{video.info.width}x{video.info.height}")
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
    print(f"{len(paths)} videos ({', '.join(sorted(sizes))}), {frames_total} frames, "
          f"{seconds_total:.1f} s of video; decode alone {frames_total / decode_s:.0f} "
          f"frames/s (batch {args.batch})")
    print(f"{'extractor':<10}{'device':>10}{'batched f/s':>14}{'naive f/s':>12}"
          f"{'speed-up':>10}")
    for name in ex:
        b = frames_total / batched[name]
        n = naive_n[name] / naive[name]
        print(f"{name:<10}{devices[name]:>10}{b:>14.1f}{n:>12.1f}{b / n:>9.1f}x")
    naive_e2e = sum(naive[n] / naive_n[n] for n in ex) * frames_total
    fps = frames_total / e2e
    print(f"end to end (one decode, all four): {fps:.1f} frames/s, "
          f"real-time factor {seconds_total / e2e:.2f}; naive loop "
          f"{frames_total / naive_e2e:.1f} frames/s; speed-up {naive_e2e / e2e:.1f}x")
    if on_cuda:
        print(sampler.summary())
    face_fps = frames_total / batched["face"]
    print(f"targets (H100): end to end {fps:.0f} / {TARGET_E2E_FPS:.0f} frames/s; face "
          f"{face_fps:.0f} / {TARGET_FACE_FPS:.0f} frames/s (at 640x480; here "
          f"{', '.join(sorted(sizes))}); full release {BAH_FRAMES:,} frames in "
          f"{BAH_FRAMES / fps / 60:.1f} min / {TARGET_BAH_MIN:.0f} min, one process")


def same_as_auto() -> str:
    """Whether ``--device auto`` would run where ``--device cpu`` does, and why."""
    import ctranslate2
    import onnxruntime as ort

    ort_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    try:
        ct2_cuda = ctranslate2.get_cuda_device_count()
    except RuntimeError:  # a CUDA runtime without a usable driver
        ct2_cuda = 0
    why = (f"ONNX Runtime {'has' if ort_cuda else 'has no'} CUDA provider, "
           f"CTranslate2 sees {ct2_cuda} CUDA devices")
    if ort_cuda or ct2_cuda:
        return f"--device auto would use CUDA here ({why}): not the same as --device cpu"
    return f"--device cpu and --device auto resolve to the same here: the CPU ({why})"


def resized(src: Path, size: str, dst: Path) -> Path:
    """``src`` re-encoded to ``size`` (WxH), H.264, sound copied."""
    w, _, h = size.lower().partition("x")
    if not (w.isdigit() and h.isdigit()):
        raise SystemExit(f"--resize {size!r}: expected WxH, e.g. 640x480")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-vf", f"scale={w}:{h}",
                    "-c:v", "libx264", "-preset", "fast", "-crf", "20", "-c:a", "copy",
                    str(dst)], check=True)
    return dst


class GpuSampler:
    """GPU utilisation (%) and memory used (MiB) of CUDA device ``index``, one sample a
    second from ``nvidia-smi -l 1`` running in the background while inside ``with``
    (``index`` -1: does nothing). Samples add up over every ``with``."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.util: list[float] = []
        self.mem: list[float] = []
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> GpuSampler:
        if self.index >= 0 and shutil.which("nvidia-smi"):
            cmd = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                   "--format=csv,noheader,nounits", "-l", "1", "-i", str(self.index)]
            if shutil.which("stdbuf"):  # one line at a time through the pipe
                cmd = ["stdbuf", "-oL", *cmd]
            self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, text=True)
            self._reader = threading.Thread(target=self._read, args=(self._proc,),
                                            daemon=True)
            self._reader.start()
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        for line in proc.stdout or ():
            parts = [p.strip() for p in line.split(",")]
            try:
                util, mem = float(parts[0]), float(parts[1])
            except (IndexError, ValueError):
                continue  # "[N/A]" or a message
            self.util.append(util)
            self.mem.append(mem)

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            if self._reader is not None:
                self._reader.join(timeout=10)
            self._proc = self._reader = None

    def summary(self) -> str:
        if not self.util:
            return (f"GPU cuda:{self.index} during end to end: no samples (nvidia-smi "
                    "missing, or the pass was shorter than its first line)")
        return (f"GPU cuda:{self.index} during end to end ({len(self.util)} samples, 1/s): "
                f"utilisation mean {np.mean(self.util):.0f} % max {max(self.util):.0f} %; "
                f"memory used mean {np.mean(self.mem):.0f} MiB max {max(self.mem):.0f} MiB")


def _consume(face: FaceExtractor, frames: np.ndarray) -> dict[str, Any]:
    state: dict[str, Any] = {}
    face.consume(state, frames)
    return state


if __name__ == "__main__":
    main()
