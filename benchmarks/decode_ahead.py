"""Decoding ahead of the models: the face extractor fed by a stream that reads up to
two batches ahead in a thread (as bahfs runs) against one that reads in the caller's
thread (decoding waits while the models run), on the same videos in the same run.

    .venv/bin/python -m benchmarks.decode_ahead [--seconds 20] [--size 640x480] [--rounds 3]

The video is real H.264 from ffmpeg's test source with a face photo pasted in
(skimage's astronaut), so the detector and the expression model both work.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from extractors.decode import open_video
from extractors.face import FaceExtractor


def make_video(out: Path, seconds: int, size: str) -> Path:
    from skimage import data
    from skimage.io import imsave

    face = out.with_suffix(".png")
    imsave(face, data.astronaut()[:300, 100:400])
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={size}:rate=24:duration={seconds}", "-i", str(face),
                    "-filter_complex", "[1]scale=200:-1[f];[0][f]overlay=x='100+40*sin(t)':y=80",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(out)], check=True)
    return out


def run(face: FaceExtractor, path: Path, prefetch: int) -> float:
    t0 = time.perf_counter()
    state: dict[str, object] = {}
    stream = open_video(path, batch=32, prefetch=prefetch)
    for frames in stream:
        face.consume(state, frames)
    return stream.n_decoded / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_video(Path(tmp) / "v.mp4", args.seconds, args.size)
        face = FaceExtractor()
        run(face, path, 2)  # warm-up
        rates: dict[int, list[float]] = {0: [], 2: []}
        for _ in range(args.rounds):
            for prefetch in (0, 2):
                rates[prefetch].append(run(face, path, prefetch))
        inline, ahead = np.median(rates[0]), np.median(rates[2])
        print(f"{args.seconds} s of {args.size} video, face extractor on {face.device}, "
              f"median of {args.rounds} rounds")
        print(f"decode in the caller's thread: {inline:7.1f} frames/s")
        print(f"decode two batches ahead     : {ahead:7.1f} frames/s  ({ahead / inline:.2f}x)")


if __name__ == "__main__":
    main()
