"""The behaviour extractor's cost per frame against the face path, same video, same
run: ``face`` (CenterFace + FER) alone, ``behaviour`` alone (with and without the
body model), and ``face`` with ``behaviour`` (the detection shared).

    .venv/bin/python -m benchmarks.behaviour [--seconds 10] [--size 640x480] [--video V]

Without ``--video`` the clip is the astronaut's head and shoulders over a test
pattern (benchmarks/decode_ahead.py); one face in every frame.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.decode_ahead import make_video
from extractors.base import Extractor
from extractors.behaviour import BehaviourConfig, BehaviourExtractor
from extractors.face import FaceExtractor
from extractors.pipeline import extract_all


def per_frame_ms(path: Path, extractors: list[Extractor], rounds: int) -> tuple[float, int]:
    best, n = float("inf"), 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        n = extract_all(path, extractors)[0].n_frames
        best = min(best, time.perf_counter() - t0)
    return best / n * 1000, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--video", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.video or make_video(Path(tmp) / "v.mp4", args.seconds, args.size)
        face = FaceExtractor()
        full = BehaviourExtractor()
        no_body = BehaviourExtractor(BehaviourConfig(body=False))
        extract_all(path, [face, full])  # warm-up
        f, n = per_frame_ms(path, [face], args.rounds)
        b, _ = per_frame_ms(path, [full], args.rounds)
        nb, _ = per_frame_ms(path, [no_body], args.rounds)
        both, _ = per_frame_ms(path, [face, full], args.rounds)
        print(f"{path.name if args.video else f'{args.seconds} s of {args.size}'} ({n} frames), "
              f"best of {args.rounds}, ms per frame: face {f:.1f}; behaviour {b:.1f} "
              f"({b / f:.2f}x face); behaviour without body {nb:.1f} ({nb / f:.2f}x); "
              f"face + behaviour {both:.1f} ({both / f:.2f}x face alone)")


if __name__ == "__main__":
    main()
