"""The whisperX backend of the ``words`` extractor, for environments that have it.

whisperX 3.8 pins ``torch~=2.8`` (with torchaudio, pyannote.audio 4), which cannot
share bahfs's environment (torch 2.13, no torchaudio build for it), and its word
aligner fetches a wav2vec2 model from a hub. So bahfs's default backend is
faster-whisper, the engine whisperX runs, with Whisper's own word timestamps
(``docs/models.md``). In an environment where ``import whisperx`` works, set
``SpeechConfig(asr_backend="whisperx", align_model_dir=DIR)``: transcription runs
through whisperX (its bundled pyannote VAD, batched faster-whisper, language
detection), and words are timed by whisperX's forced aligner with the local
wav2vec2 model in ``DIR`` (a Hugging Face format folder the user provides; nothing
is downloaded). Words the aligner cannot time (numbers, symbols) are interpolated
by the caller, as for the default backend.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from store.errors import ConfigError, ExtractionError, ModelError


@lru_cache(maxsize=2)
def _models(model_dir: str, compute_type: str, language: str, align_dir: str
            ) -> tuple[Any, Any, dict[str, Any], Any]:
    try:
        import whisperx
    except ImportError as exc:
        raise ConfigError("asr_backend 'whisperx' needs whisperX in this environment",
                          expected="`pip install whisperx` in an environment with torch 2.8, "
                                   "or asr_backend 'faster-whisper'") from exc
    if not (Path(align_dir) / "config.json").is_file():
        raise ModelError("whisperX word alignment needs a local wav2vec2 model folder",
                         path=align_dir or "(align_model_dir not set)",
                         expected="a Hugging Face wav2vec2 CTC model folder with config.json")
    asr = whisperx.load_model(model_dir, "cpu", compute_type=compute_type,
                              language=language or None, local_files_only=True)
    align_lang = language or "en"
    aligner, meta = whisperx.load_align_model(align_lang, "cpu", model_name=align_dir,
                                              model_cache_only=True)
    return whisperx, asr, {"aligner": aligner, "meta": meta}, align_lang


def transcribe_whisperx(audio: np.ndarray, model_dir: str, compute_type: str,
                        language: str, align_dir: str) -> dict[str, Any]:
    """Transcript in the ``words`` extractor's format: language, its probability
    (whisperX reports none: 1.0 when given, else 0.0), timed words (times None
    where the aligner had none)."""
    whisperx, asr, align, align_lang = _models(model_dir, compute_type, language, align_dir)
    result = asr.transcribe(audio.astype(np.float32), batch_size=8)
    lang = result.get("language") or language
    if lang != align_lang:
        raise ExtractionError(f"speech is in {lang!r} but the alignment model is for "
                              f"{align_lang!r}", path=align_dir,
                              expected=f"SpeechConfig(language={lang!r}) and a {lang} model")
    aligned = whisperx.align(result["segments"], align["aligner"], align["meta"], audio, "cpu",
                             return_char_alignments=False)
    words = [{"word": str(w["word"]).strip(), "start": w.get("start"), "end": w.get("end"),
              "probability": float(w.get("score", 0.0) or 0.0)}
             for w in aligned["word_segments"] if str(w["word"]).strip()]
    return {"language": lang, "language_probability": 1.0 if language else 0.0,
            "words": words}
