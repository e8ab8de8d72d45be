"""One face detection for every face feature set of a video: ``face`` and
``face_crop`` extracted together against each alone, on the same video, same run.

    .venv/bin/python -m benchmarks.shared_detection [--seconds 10] [--size 640x480]

Without sharing, together costs the sum of the two alone (each runs the detector);
with it, together costs one detection plus the crops.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.decode_ahead import make_video
from extractors.base import Extractor
from extractors.face import FaceExtractor
from extractors.face_crop import FaceCropExtractor
from extractors.pipeline import extract_all


def timed(path: Path, extractors: list[Extractor]) -> float:
    t0 = time.perf_counter()
    extract_all(path, extractors)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--size", default="640x480")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_video(Path(tmp) / "v.mp4", args.seconds, args.size)
        face, crop = FaceExtractor(), FaceCropExtractor()
        timed(path, [face])  # warm-up
        a, b = timed(path, [face]), timed(path, [crop])
        face.detector.runs = crop.detector.runs = 0
        both = timed(path, [face, crop])
        print(f"{args.seconds} s of {args.size}: face alone {a:.1f} s, face_crop alone "
              f"{b:.1f} s, sum {a + b:.1f} s; together {both:.1f} s "
              f"({(a + b) / both:.2f}x faster than the sum; detector runs together: face "
              f"{face.detector.runs}, face_crop {crop.detector.runs})")


if __name__ == "__main__":
    main()
