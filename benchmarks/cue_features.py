"""The vocal and language cue extractors' speed against the face path, same videos,
same run, and how many of a generated release's fillers the ASR keeps.

    .venv/bin/python -m benchmarks.cue_features RELEASE [--videos 6] [--device cpu]

RELEASE is a generated release (``bahfs sample-data``; its ``bahfs_truth.json`` says
what each answer says and when). Per extractor (``face``, ``prosody``, ``fluency``,
``speech_model`` when ``--speech-model DIR`` names a Hugging Face folder, ``vggish``
when ``--vggish FILE`` names an ONNX VGGish): frames
per second over the first ``--videos`` videos, each decoded and extracted alone,
after one warm-up video. Then, over every video of the release, the filler sounds
(um, uh) and filler words the speech holds against those ``fluency``'s transcript
keeps, and the answers whose lost filler a filled pause in the audio stands for.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from extractors.base import Extractor
from extractors.fluency import FluencyExtractor
from extractors.fluency_text import filler_words, is_filler_sound
from extractors.pipeline import extract_all
from extractors.runtime import Runtime
from store.devices import DeviceSetting


def frames_per_s(paths: list[Path], extractor: Extractor) -> float:
    extract_all(paths[0], [extractor])  # warm-up: models loaded, caches filled
    frames, seconds = 0, 0.0
    for p in paths:
        t0 = time.perf_counter()
        frames += extract_all(p, [extractor])[0].n_frames
        seconds += time.perf_counter() - t0
    return frames / seconds


def filler_retention(root: Path, truth: dict[str, Any], fluency: FluencyExtractor
                     ) -> dict[str, int]:
    tot = dict.fromkeys(("sounds", "sounds_kept", "words", "words_kept", "answers_lost",
                         "lost_with_filled_pause", "answers_without", "false_filled"), 0)
    for rel, t in sorted(truth.items()):
        ev = json.loads(extract_all(root / rel, [fluency])[0].attrs["fluency"])
        for u in t["utterances"]:
            lo, hi = u["start_s"] - 0.1, u["end_s"] + 0.1
            said = u["text"].split()
            inside = [w for w in ev["words"] if lo <= (w["start"] + w["end"]) / 2 <= hi]
            pauses = [p for p in ev["filled_pauses"] if lo <= (p[0] + p[1]) / 2 <= hi]
            n_sound = sum(is_filler_sound(w) for w in said)
            kept = sum(w["filler_sound"] for w in inside)
            n_word = int(filler_words(said).sum())
            tot["sounds"] += n_sound
            tot["sounds_kept"] += min(n_sound, kept)
            tot["words"] += n_word
            tot["words_kept"] += min(n_word, sum(w["filler"] and not w["filler_sound"]
                                                 for w in inside))
            if n_sound > kept:
                tot["answers_lost"] += 1
                tot["lost_with_filled_pause"] += bool(pauses)
            if not n_sound:
                tot["answers_without"] += 1
                tot["false_filled"] += bool(pauses)
    return tot


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("release", type=Path)
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--speech-model", default="", help="a Hugging Face speech model folder")
    ap.add_argument("--vggish", default="", help="an ONNX VGGish")
    args = ap.parse_args()
    truth = json.loads((args.release / "bahfs_truth.json").read_text())
    paths = [args.release / r for r in sorted(truth)[:args.videos]]
    runtime = Runtime(device=DeviceSetting(args.device))
    from extractors.face import FaceExtractor
    from extractors.prosody import ProsodyExtractor

    fluency = FluencyExtractor(runtime=runtime)
    built: list[Extractor] = [FaceExtractor(runtime=runtime), ProsodyExtractor(runtime=runtime),
                              fluency]
    if args.speech_model:
        from extractors.speech_model import SpeechModelConfig, SpeechModelExtractor

        built.append(SpeechModelExtractor(SpeechModelConfig(model_dir=args.speech_model),
                                          runtime))
    if args.vggish:
        from extractors.vggish import VGGishConfig, VGGishExtractor

        built.append(VGGishExtractor(VGGishConfig(model_path=args.vggish), runtime))
    rates = {e.name: frames_per_s(paths, e) for e in built}
    face = rates["face"]
    print(f"{len(paths)} videos, device {args.device}, frames/s: " + "; ".join(
        f"{k} {v:.1f} ({v / face:.2f}x face)" for k, v in rates.items()))
    print("fillers:", filler_retention(args.release, truth, fluency))


if __name__ == "__main__":
    main()
