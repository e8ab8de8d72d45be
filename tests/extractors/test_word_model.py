"""Word vectors through sentence-transformers on ONNX Runtime: equal to the torch
model, long transcripts in windows (every word a real vector), other model folders
by path (a truncated MiniLM end to end, a model of another width)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from bahfs.sample.script import VideoPlan
from extractors.pipeline import extract_all
from extractors.speech import SpeechConfig, SpeechExtractor
from extractors.word_model import MINILM_SOURCE_SHA256, WordEncoder, default_word_model_dir
from store.errors import ModelError

Media = dict[str, tuple[Path, VideoPlan | None]]
# single word-piece words, so word i is token i (windows are then easy to check)
VOCAB = "i am not sure if we should stop now or wait until next week maybe".split()


@pytest.fixture(scope="module")
def encoder() -> WordEncoder:
    return WordEncoder()


def test_onnx_tokens_equal_the_torch_model(encoder: WordEncoder) -> None:
    words = "Maybe next week, or, no, next month.".split()
    torch_model = SentenceTransformer(str(default_word_model_dir()), device="cpu")
    want = torch_model.encode(" ".join(words), output_value="token_embeddings")
    enc = encoder.tokenizer(" ".join(words), add_special_tokens=False)
    got = encoder._run([enc["input_ids"]])[0]
    np.testing.assert_allclose(got, np.asarray(want)[1:-1], atol=1e-4)  # [CLS] .. [SEP]
    assert encoder.meta["source_sha256"] == MINILM_SOURCE_SHA256
    assert encoder.dim == 384 and encoder.max_tokens == 256


def test_long_transcripts_are_encoded_in_windows(encoder: WordEncoder) -> None:
    words = [VOCAB[(i * 7) % len(VOCAB)] for i in range(1000)]
    assert len(encoder.tokenizer(words, is_split_into_words=True,
                                 add_special_tokens=False)["input_ids"]) == 1000
    vectors, ok = encoder.embed(words)
    assert ok.all() and (np.abs(vectors).sum(axis=1) > 0).all()  # no zero vector
    spans = encoder.windows(1000)
    assert spans[0] == (0, 254) and spans[1] == (127, 381) and spans[-1][1] == 1000
    # word 500 sits furthest from an edge in the window starting at 381
    alone, _ = encoder.embed(words[381:635])
    np.testing.assert_allclose(vectors[500], alone[500 - 381], atol=1e-5)
    first, _ = encoder.embed(words[:254])
    np.testing.assert_allclose(vectors[:60], first[:60], atol=1e-5)
    short, _ = encoder.embed(words[:40])  # one window: the same as any window size
    small = WordEncoder(max_tokens=64)
    np.testing.assert_allclose(small.embed(words[:40])[0], short, atol=1e-5)


def _truncated_minilm(d: Path) -> Path:
    model = SentenceTransformer(str(default_word_model_dir()), device="cpu")
    bert = model[0].auto_model
    bert.encoder.layer = bert.encoder.layer[:2]
    bert.config.num_hidden_layers = 2
    model.save(str(d / "minilm-2layers"))
    return d / "minilm-2layers"


@pytest.mark.slow
def test_another_model_folder_end_to_end(media: Media, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAHFS_MODELS", str(tmp_path / "models"))
    folder = _truncated_minilm(tmp_path)
    default, other = SpeechExtractor(), SpeechExtractor(
        SpeechConfig(embedding_model=str(folder)))
    exported = list((tmp_path / "models" / "sentence-transformers").glob(
        "minilm-2layers-*/onnx/model.onnx"))
    assert len(exported) == 1 and other.meta["source"] == str(folder)
    assert other.meta["source_sha256"] != MINILM_SOURCE_SHA256
    a, b = extract_all(media["speech24"][0], [default, other], video_id="v", participant_id="P")
    assert a.spec.id != b.spec.id
    has = b.arrays["has_word"]
    np.testing.assert_array_equal(has, a.arrays["has_word"])
    assert has.any() and b.arrays["word_embedding"][has].any(axis=1).all()
    assert not np.allclose(a.arrays["word_embedding"][has], b.arrays["word_embedding"][has])
    assert b.spec.extra["word_model"]["onnx_sha256"] in b.spec.model_sha256
    again = SpeechExtractor(SpeechConfig(embedding_model=str(folder)))  # no second export
    assert again.meta["onnx_sha256"] == other.meta["onnx_sha256"]


@pytest.mark.slow
def test_width_comes_from_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sentence_transformers import models
    from transformers import BertConfig, BertModel

    monkeypatch.setenv("BAHFS_MODELS", str(tmp_path / "models"))
    src = tmp_path / "bert-tiny"
    bert = BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                                num_attention_heads=2, intermediate_size=64))
    bert.save_pretrained(src / "hf")
    SentenceTransformer(str(default_word_model_dir())).tokenizer.save_pretrained(src / "hf")
    module = models.Transformer(str(src / "hf"), max_seq_length=48)
    SentenceTransformer(modules=[module, models.Pooling(32)]).save(str(src / "st"))
    enc = WordEncoder(str(src / "st"))
    assert enc.dim == 32 and enc.max_tokens == 48
    vectors, ok = enc.embed([VOCAB[i % len(VOCAB)] for i in range(200)])
    assert vectors.shape == (200, 32) and ok.all() and (np.abs(vectors).sum(1) > 0).all()


def test_unusable_folders_fail_naming_them(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"not a sentence-transformers model folder"):
        WordEncoder(str(tmp_path / "nowhere"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelError, match=r"no model weights.*" + tmp_path.name):
        WordEncoder(str(tmp_path))
