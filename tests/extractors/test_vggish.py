"""VGGish by path: the front end against torchvggish's own preprocessing code, one
0.96 s patch per frame, and an ONNX model of VGGish's shape (random weights, built
here: no VGGish weights can be had offline) against torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bahfs.sample.script import VideoPlan
from extractors.base import DecodedVideo, Extractor
from extractors.testing import ExtractorContract, decoded
from extractors.vggish import VGGishConfig, VGGishExtractor, log_mel, patches
from store.errors import ModelError

torch = pytest.importorskip("torch")
vggish_input = pytest.importorskip("torchvggish.vggish_input")

Media = dict[str, tuple[Path, VideoPlan | None]]


@pytest.fixture(scope="module")
def video(media: Media) -> DecodedVideo:
    return decoded(media["speech24"][0])


def _net(out_dim: int) -> object:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(4),
        torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(4),
        torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 4, out_dim)).eval()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    """A small network of VGGish's input and output shapes, exported to ONNX."""
    net = _net(128)
    path = tmp_path_factory.mktemp("vggish") / "vggish.onnx"
    torch.onnx.export(net, (torch.zeros(2, 1, 96, 64),), str(path), input_names=["patches"],
                      output_names=["embedding"], dynamic_axes={"patches": {0: "n"},
                                                                "embedding": {0: "n"}},
                      opset_version=17, dynamo=False)
    return path, net


def test_the_front_end_is_torchvggish_s(video: DecodedVideo) -> None:
    from torchvggish import mel_features
    from torchvggish import vggish_params as p

    audio = video.audio
    assert audio is not None
    theirs = mel_features.log_mel_spectrogram(
        audio.astype(np.float64), audio_sample_rate=p.SAMPLE_RATE, log_offset=p.LOG_OFFSET,
        window_length_secs=p.STFT_WINDOW_LENGTH_SECONDS,
        hop_length_secs=p.STFT_HOP_LENGTH_SECONDS, num_mel_bins=p.NUM_MEL_BINS,
        lower_edge_hertz=p.MEL_MIN_HZ, upper_edge_hertz=p.MEL_MAX_HZ)
    ours = log_mel(audio)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-9, rtol=0)
    examples = vggish_input.waveform_to_examples(audio, 16_000, return_tensor=False)
    centres = (np.arange(len(examples)) * 96 * 160 + 7800) / 16_000  # their 0.96 s hop
    np.testing.assert_allclose(patches(ours, centres), examples, atol=1e-9, rtol=0)


def test_one_patch_per_frame_through_the_onnx_model(
        model: tuple[Path, object], video: DecodedVideo) -> None:
    path, net = model
    ex = VGGishExtractor(VGGishConfig(model_path=str(path), batch=16))
    out = ex.extract(video).arrays
    assert out["embedding"].shape == (video.n_frames, 128) and out["has_audio"].all()
    assert video.audio is not None
    mel = log_mel(video.audio)
    some = np.array([0, 24, 100, video.n_frames - 1])
    p = patches(mel, video.timestamps[some])
    first = np.round((video.timestamps[some] * 16_000 - 7800) / 160).astype(int)
    inside = (first >= 0) & (first + 96 <= mel.shape[0])
    for row, k0, ok in zip(p, first, inside, strict=True):  # centred on the frame
        if ok:
            np.testing.assert_array_equal(row, mel[k0:k0 + 96])
    with torch.no_grad():
        want = net(torch.from_numpy(p[:, None].astype(np.float32))).numpy()
    np.testing.assert_allclose(out["embedding"][some].astype(np.float32), want,
                               atol=2e-3, rtol=2e-3)  # float16 storage
    np.testing.assert_allclose(ex.embed(p), want, atol=1e-4, rtol=0)


def test_a_model_of_another_shape_fails_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "flat.onnx"
    torch.onnx.export(torch.nn.Linear(64, 8).eval(), (torch.zeros(2, 64),), str(path),
                      dynamo=False)
    with pytest.raises(ModelError, match=r"input .*expected: an ONNX VGGish"):
        VGGishExtractor(VGGishConfig(model_path=str(path)))


@pytest.fixture(scope="module")
def extractor(model: tuple[Path, object]) -> Extractor:
    return VGGishExtractor(VGGishConfig(model_path=str(model[0])))


class TestVGGishContract(ExtractorContract):
    """bahfs's extractor contract on a VGGish-shaped ONNX model by path."""
