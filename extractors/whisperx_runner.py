"""The whisperX side of the ``whisperx`` ASR backend: a program run by the
interpreter of ``.venv-whisperx`` (``bash .ci/whisperx.sh``), never imported by bahfs.

It imports only the standard library, numpy, nltk and whisperx, so that it runs in
that environment (torch 2.8), which has none of bahfs's packages.
``extractors/asr_whisperx.py`` starts it once per bahfs process, as
``python -I whisperx_runner.py`` (``-I``: this folder's modules, such as
``audio.py``, must not shadow installed ones) and talks to it in lines of JSON:

* on start it writes ``{"ok": true, "ready": true, "whisperx": VERSION}`` (or an
  error, below) to its standard output;
* then, per line read from standard input, a request ``{"audio": NPY, "model_dir",
  "compute_type", "language", "align_model_dir", "batch_size"}`` (NPY: 16 kHz mono
  float32 samples saved by numpy), it writes one line ``{"ok": true, "language",
  "language_probability", "words": [{"word", "start", "end", "probability"}]}``;
* on failure the line is ``{"ok": false, "kind": "config"|"model"|"extraction",
  "message", "path", "expected"}``, which bahfs raises as the matching error.

Anything else whisperX or its libraries print goes to standard error, which bahfs
keeps in a log file and quotes when the runner dies.

Models are loaded once and kept (keyed by their folders and options), so a process
serves many videos. Nothing is downloaded: whisperX's pyannote VAD weights ship in
its wheel, Whisper and the wav2vec2 aligner are local folders loaded with
``local_files_only``, and the child runs with ``HF_HUB_OFFLINE=1``. whisperX splits
each segment into sentences with nltk's Punkt model and downloads it when missing;
here a missing Punkt model is replaced by nltk's untrained Punkt splitter (sentence
ends at ``.``, ``?``, ``!``), which only changes how words are grouped into
sentences, not their times.

``language_probability``: whisperX detects the language but only logs its
probability, so the runner detects it itself with the same faster-whisper call on
the first 30 s when no language is given and the model is multilingual; a given
language, or an English-only model, reports 1.0, as faster-whisper does.
Words the aligner could not time have ``start``/``end`` null and probability 0.0.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

VAD_METHOD = "pyannote"  # bundled weights; "silero" fetches its model from a hub


class RunnerError(Exception):
    """A failure to report to bahfs as an error of ``kind``."""

    def __init__(self, kind: str, message: str, path: str, expected: str) -> None:
        super().__init__(message)
        self.reply = {"ok": False, "kind": kind, "message": message, "path": path,
                      "expected": expected}


def _offline_punkt() -> None:
    """Let whisperX's sentence splitting fall back to an untrained Punkt splitter
    instead of downloading nltk's ``punkt_tab`` data."""
    import whisperx.alignment as alignment
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    real = alignment.nltk_load

    def load(resource: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return real(resource, *args, **kwargs)
        except LookupError:
            return PunktSentenceTokenizer()

    alignment.nltk_load = load


class Runner:
    def __init__(self) -> None:
        import whisperx

        self.whisperx = whisperx
        self.asr: dict[tuple[str, ...], Any] = {}
        self.aligners: dict[tuple[str, ...], tuple[Any, dict[str, Any]]] = {}
        _offline_punkt()

    @staticmethod
    def device(want: str) -> tuple[str, int]:
        """(``cuda``, N) or (``cpu``, 0) for ``auto``, ``cpu``, ``cuda`` or ``cuda:N``,
        by what this environment's torch sees."""
        import torch

        kind, _, index = want.partition(":")
        count = torch.cuda.device_count()
        if kind == "cpu":
            return "cpu", 0
        if kind == "cuda":
            if int(index or 0) >= count:
                raise RunnerError("device", f"device {want} asked for, but whisperX's torch "
                                  f"sees {count} CUDA devices", want,
                                  "a GPU torch can use in .venv-whisperx, or --device auto/cpu")
            return "cuda", int(index or 0)
        return ("cuda", 0) if count else ("cpu", 0)

    def _asr(self, model_dir: str, compute_type: str, language: str,
             device: tuple[str, int]) -> Any:
        key = (model_dir, compute_type, language, *map(str, device))
        if key not in self.asr:
            try:
                self.asr[key] = self.whisperx.load_model(
                    model_dir, device[0], device_index=device[1], compute_type=compute_type,
                    language=language or None,
                    vad_method=VAD_METHOD, local_files_only=True,
                    threads=min(4, os.cpu_count() or 1))
            except Exception as exc:
                raise RunnerError("model", f"whisperX could not load the Whisper model: {exc}",
                                  model_dir, "a CTranslate2 Whisper model folder (model.bin, "
                                  f"config.json, tokenizer.json) usable as {compute_type}"
                                  ) from exc
        return self.asr[key]

    def _aligner(self, align_dir: str, language: str, torch_device: str
                 ) -> tuple[Any, dict[str, Any]]:
        key = (align_dir, language, torch_device)
        if key not in self.aligners:
            try:
                self.aligners[key] = self.whisperx.load_align_model(
                    language, torch_device, model_name=align_dir, model_cache_only=True)
            except Exception as exc:
                why = f"{exc} ({exc.__context__!r})" if exc.__context__ else str(exc)
                raise RunnerError("model", f"whisperX could not load the alignment model: {why}",
                                  align_dir, "a Hugging Face Wav2Vec2ForCTC folder with its "
                                  "processor (config.json, preprocessor_config.json, "
                                  "vocab.json, weights)") from exc
        return self.aligners[key]

    def transcribe(self, req: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        try:
            audio = np.load(req["audio"], allow_pickle=False).astype(np.float32).reshape(-1)
            model_dir, compute_type = str(req["model_dir"]), str(req["compute_type"])
            language, align_dir = str(req.get("language") or ""), str(req["align_model_dir"])
            batch_size = int(req.get("batch_size") or 8)
            device = self.device(str(req.get("device") or "auto"))
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise RunnerError("config", f"bad request to the whisperX runner: {exc!r}",
                              str(req.get("audio", "(no audio)")),
                              "audio (a float32 .npy), model_dir, compute_type, language, "
                              "align_model_dir, batch_size") from exc
        torch_device = f"cuda:{device[1]}" if device[0] == "cuda" else "cpu"
        asr = self._asr(model_dir, compute_type, language, device)
        align_lang = language or "en"
        aligner, meta = self._aligner(align_dir, align_lang, torch_device)
        lang, prob = language, 1.0
        if not lang:
            lang = "en"
            if asr.model.model.is_multilingual:
                lang, prob, _ = asr.model.detect_language(audio)
        if lang != align_lang:
            raise RunnerError("extraction", f"speech is in {lang!r} but the alignment model is "
                              f"taken for {align_lang!r}", align_dir,
                              f"SpeechConfig(language={lang!r}) and a {lang} alignment model")
        try:
            result = asr.transcribe(audio, batch_size=batch_size, language=lang)
            aligned = self.whisperx.align(result["segments"], aligner, meta, audio,
                                          torch_device, return_char_alignments=False)
        except Exception as exc:
            if "out of memory" in str(exc).lower() or "cuda" in str(exc).lower():
                raise RunnerError("device", f"the device failed: {exc!r}", torch_device,
                                  "free GPU memory and a working device (retried)") from exc
            raise RunnerError("extraction", f"whisperX failed on the audio: {exc!r}",
                              req["audio"], f"{len(audio) / 16_000:.1f} s of 16 kHz mono "
                              "speech that whisperX can transcribe and align") from exc
        words = [{"word": str(w["word"]).strip(), "start": _time(w.get("start")),
                  "end": _time(w.get("end")), "probability": float(w.get("score") or 0.0)}
                 for w in aligned["word_segments"] if str(w["word"]).strip()]
        return {"ok": True, "language": lang, "language_probability": float(prob),
                "words": words, "device": torch_device}


def _time(value: Any) -> float | None:
    if value is None:
        return None
    t = float(value)
    return None if t != t else t  # NaN: not timed


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
    # the protocol owns the real stdout; every other print goes to stderr
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def reply(obj: dict[str, Any]) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    try:
        runner = Runner()
        from importlib.metadata import version

        reply({"ok": True, "ready": True, "whisperx": version("whisperx")})
    except Exception as exc:
        reply(RunnerError("config", f"whisperX cannot be imported: {exc!r}", sys.executable,
                          "the environment made by `bash .ci/whisperx.sh`").reply)
        return 1
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply(runner.transcribe(json.loads(line)))
        except RunnerError as exc:
            reply(exc.reply)
        except Exception as exc:
            reply(RunnerError("extraction", f"the whisperX runner failed: {exc!r}",
                              str(Path(__file__)), "a request it can serve").reply)
    return 0


if __name__ == "__main__":
    sys.exit(main())
