"""Speech models by path: tiny randomly initialised wav2vec2, HuBERT, WavLM and
data2vec-audio models built here (no weights offline), exported to ONNX by bahfs,
checked against transformers' torch model; windows against a whole pass; pooling per
frame; the contract suite on one of them."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bahfs.sample.script import VideoPlan
from extractors.base import DecodedVideo, Extractor
from extractors.runtime import Runtime
from extractors.speech_model import SpeechModelConfig, SpeechModelExtractor, window_starts
from extractors.testing import ExtractorContract, decoded
from store.errors import ConfigError, ModelError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

Media = dict[str, tuple[Path, VideoPlan | None]]
FAMILIES = {"wav2vec2": ("Wav2Vec2Config", "Wav2Vec2Model"),
            "hubert": ("HubertConfig", "HubertModel"),
            "wavlm": ("WavLMConfig", "WavLMModel"),
            "data2vec-audio": ("Data2VecAudioConfig", "Data2VecAudioModel")}
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64, "conv_dim": (32,) * 7, "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 4}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """One tiny random model folder per family, and a private export cache."""
    root = tmp_path_factory.mktemp("speech-models")
    out = {}
    for i, (family, (config_cls, model_cls)) in enumerate(FAMILIES.items()):
        torch.manual_seed(i)
        config = getattr(transformers, config_cls)(**TINY)
        getattr(transformers, model_cls)(config).eval().save_pretrained(root / family)
        transformers.Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(root / family)
        out[family] = root / family
    torch.manual_seed(9)  # the layout of the large models: layer norm in the front end
    config = transformers.Wav2Vec2Config(feat_extract_norm="layer", do_stable_layer_norm=True,
                                         **TINY)
    transformers.Wav2Vec2Model(config).eval().save_pretrained(root / "large")
    transformers.Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(root / "large")
    out["large"] = root / "large"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BAHFS_MODELS", str(root / "cache"))
        yield out


@pytest.fixture(scope="module")
def audio(media: Media) -> np.ndarray:
    """Nine seconds of the generated speech."""
    video = decoded(media["speech24"][0])
    assert video.audio is not None
    return video.audio[16_000:16_000 * 10]


def _torch_states(folder: Path, audio: np.ndarray) -> np.ndarray:
    model = transformers.AutoModel.from_pretrained(str(folder)).eval()
    x = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
    with torch.no_grad():
        out = model(torch.from_numpy(x[None].astype(np.float32)), output_hidden_states=True)
    return torch.stack(out.hidden_states, 0)[:, 0].numpy()  # (states, frames, width)


@pytest.mark.slow  # four exports (~10 s)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_onnx_agrees_with_the_torch_model(family: str, models: dict[str, Path],
                                          audio: np.ndarray) -> None:
    ex = SpeechModelExtractor(SpeechModelConfig(model_dir=str(models[family]),
                                                layers="0,1,-1"))
    short = audio[:3 * 16_000]
    ours = ex.model_frames(short)  # one window
    want = _torch_states(models[family], short)[[0, 1, 2]].transpose(1, 0, 2)
    assert ours.shape == want.shape == (149, 3, 32)
    np.testing.assert_allclose(ours, want, atol=1e-4, rtol=0)
    assert ex.spec().extra["model_type"] == family
    exported = list((models[family].parent / "cache" / "speech-models").glob(
        f"{family}-*/model.onnx"))
    assert len(exported) == 1  # exported once, cached by the folder's hash
    again = SpeechModelExtractor(SpeechModelConfig(model_dir=str(models[family])))
    assert again.model_sha256() == ex.model_sha256()
    assert len(list(exported[0].parent.parent.glob(f"{family}-*"))) == 1


@pytest.mark.parametrize("name", ["large", "wav2vec2", "hubert"])
def test_windows_match_a_whole_pass(name: str, models: dict[str, Path],
                                    audio: np.ndarray) -> None:
    whole = SpeechModelExtractor(SpeechModelConfig(model_dir=str(models[name]),
                                                   layers="0,-1", window_s=60.0))
    windowed = dataclasses.replace(whole.config, window_s=3.0, overlap_s=1.0, batch=2)
    parts = SpeechModelExtractor(windowed)
    assert whole.group_norm == (name != "large")  # base layouts: a group-normed front end
    starts = window_starts(audio.size, 48_000, 16_000, 320)
    assert len(starts) == 7 and all(s % 320 == 0 for s in starts)
    a, b = whole.model_frames(audio), parts.model_frames(audio)
    assert a.shape == b.shape == (449, 2, 32)
    # Attention sees the whole input, so windows differ from a whole pass. With at
    # least 1 s of context on each side, every frame is within 1 % of the mean frame
    # norm of the whole pass (measured 0.42 % at most on these models); the feature
    # projection (index 0) is exact to float error, the group norm's statistics being
    # the whole soundtrack's.
    scale = np.linalg.norm(a, axis=2).mean(axis=0)
    rel = np.linalg.norm(a - b, axis=2) / scale
    assert rel[:, 0].max() < 1e-4 and rel[:, 1].max() < 0.01, rel.max(axis=0)
    assert whole.spec().id != parts.spec().id  # windowing is identity
    rebatched = SpeechModelExtractor(dataclasses.replace(windowed, batch=8))
    assert rebatched.spec().id == parts.spec().id  # the batch is not
    shared = SpeechModelExtractor(windowed, Runtime(batch_rows=8))  # calls across videos
    np.testing.assert_allclose(shared.model_frames(audio), b, atol=1e-5)


def test_frames_pool_the_model_frames_in_their_span(models: dict[str, Path],
                                                    media: Media) -> None:
    ex = SpeechModelExtractor(SpeechModelConfig(model_dir=str(models["hubert"]),
                                                layers="1,2"))
    video = decoded(media["speech24"][0])
    assert video.audio is not None
    out = ex.extract(video).arrays
    frames = ex.model_frames(video.audio)
    centres = (np.arange(frames.shape[0]) * 320 + 200) / 16_000
    for i in (5, 100, 200):
        t = video.timestamps[i]
        inside = (centres >= t) & (centres < t + 1 / 24)
        np.testing.assert_allclose(out["hidden"][i].astype(np.float32),
                                   frames[inside].mean(axis=0), atol=2e-3, rtol=1e-2)
    assert out["hidden"].shape == (video.n_frames, 2, 32)


def test_bad_folders_and_options_fail_naming_them(models: dict[str, Path],
                                                  tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a model folder"):
        SpeechModelExtractor()
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "preprocessor_config.json").write_text("{}")
    with pytest.raises(ModelError, match="'bert' is not a supported speech model"):
        SpeechModelExtractor(SpeechModelConfig(model_dir=str(tmp_path)))
    with pytest.raises(ConfigError, match="outside the model's 3 hidden states"):
        SpeechModelExtractor(SpeechModelConfig(model_dir=str(models["wavlm"]), layers="5"))


@pytest.fixture(scope="module")
def extractor(models: dict[str, Path]) -> Extractor:
    return SpeechModelExtractor(SpeechModelConfig(model_dir=str(models["wav2vec2"]),
                                                  layers="-1", window_s=4.0, overlap_s=1.0))


@pytest.fixture(scope="module")
def video(media: Media) -> DecodedVideo:
    return decoded(media["speech24"][0])


class TestSpeechModelContract(ExtractorContract):
    """bahfs's extractor contract on a tiny wav2vec2 by path."""
