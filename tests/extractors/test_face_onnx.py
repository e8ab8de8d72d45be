"""Face models by path: a second real architecture (a small ResNet from transformers,
exported to ONNX here) runs beside the default FER model as its own feature set;
unusable models fail at start-up naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bahfs.sample.script import VideoPlan
from extractors.face import FaceConfig, FaceExtractor
from extractors.face_onnx import FaceModel, FaceModelSpec, array_name
from extractors.pipeline import extract_all
from store.errors import ModelError

Media = dict[str, tuple[Path, VideoPlan | None]]
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def _export(module: torch.nn.Module, example: torch.Tensor, path: Path,
            outputs: list[str], dynamic_hw: bool = False) -> Path:
    batch = torch.export.Dim("batch", min=1, max=1024)
    shapes: dict[int, object] = {0: batch}
    if dynamic_hw:
        shapes.update({2: torch.export.Dim("h", min=16, max=512),
                       3: torch.export.Dim("w", min=16, max=512)})
    program = torch.onnx.export(module.eval(), (example,), input_names=["pixel_values"],
                                output_names=outputs, opset_version=18, dynamo=True,
                                dynamic_shapes=(shapes,))
    assert program is not None
    program.save(str(path), external_data=False)
    return path


class ResNetFace(torch.nn.Module):
    """A ResNet (transformers' implementation, random weights) with a pooled feature
    and 8 expression logits, as an AffectNet-trained backbone would have."""

    def __init__(self) -> None:
        super().__init__()
        from transformers import ResNetConfig, ResNetForImageClassification

        torch.manual_seed(0)
        cfg = ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 48, 64],
                           depths=[1, 1, 1, 1], layer_type="basic", num_labels=8)
        self.net = ResNetForImageClassification(cfg)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net.resnet(x)
        pooled = out.pooler_output.flatten(1)
        return pooled, self.net.classifier(pooled)


@pytest.fixture(scope="module")
def resnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("resnet")
    path = _export(ResNetFace(), torch.zeros(2, 3, 112, 112), d / "resnet_face.onnx",
                   ["features", "expression_logits"])
    (d / "resnet_face.json").write_text(json.dumps(
        {**IMAGENET, "docs": {"features": "ResNet pooled feature"}}))
    return path


@pytest.mark.slow
def test_second_face_model_runs_beside_fer(media: Media, resnet: Path) -> None:
    path, plan = media["speech24"]
    assert plan is not None
    fer, other = FaceExtractor(), FaceExtractor(FaceConfig(model_path=str(resnet)))
    a, b = extract_all(path, [fer, other], video_id="v", participant_id="P")
    assert a.spec.id != b.spec.id and a.spec.extractor == b.spec.extractor == "face"
    assert set(b.arrays) == {"features", "expression_logits", "box", "landmarks", "score",
                             "has_face"}
    n = plan.n_frames
    assert b.arrays["features"].shape == (n, 64)  # width read from the model
    assert b.arrays["expression_logits"].shape == (n, 8)
    hf = b.arrays["has_face"]
    np.testing.assert_array_equal(hf, a.arrays["has_face"])
    assert hf.any() and b.arrays["features"][hf].any(axis=1).all()
    assert not b.arrays["features"][~hf].any()
    prov = b.spec.extra["face_model"]
    assert prov["layout"] == "nchw" and prov["size"] == [112, 112] and prov["color"] == "rgb"
    assert prov["mean"] == IMAGENET["mean"] and prov["sha256"] in b.spec.model_sha256
    doc = {x.name: x.doc for x in b.spec.arrays}
    assert doc["features"] == "ResNet pooled feature"


@pytest.mark.slow
def test_model_input_is_prepared_as_the_sidecar_says(resnet: Path) -> None:
    spec = FaceModelSpec(**IMAGENET)  # type: ignore[arg-type]
    model = FaceModel(resnet, spec)
    crop = np.full((1, 112, 112, 3), (255, 0, 128), np.uint8)
    x = model.prepare(crop)
    assert x.shape == (1, 3, 112, 112)
    np.testing.assert_allclose(x[0, :, 0, 0], (np.array([1.0, 0.0, 128 / 255])
                                              - IMAGENET["mean"]) / IMAGENET["std"], rtol=1e-5)
    ref = ResNetFace().eval()
    with torch.no_grad():
        want = ref(torch.from_numpy(x))[0].numpy()
    got = model.sess.run(["features"], {"pixel_values": x})[0]
    np.testing.assert_allclose(got, want, atol=1e-4)  # the ONNX export equals torch


@pytest.mark.slow
def test_unusable_models_fail_at_start_up(tmp_path: Path, resnet: Path) -> None:
    flat = _export(torch.nn.Linear(12, 4), torch.zeros(2, 12), tmp_path / "flat.onnx",
                   ["y"])
    with pytest.raises(ModelError, match=r"rank 2.*flat\.onnx.*rank 4"):
        FaceExtractor(FaceConfig(model_path=str(flat)))
    pool = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten())
    dyn = _export(pool, torch.zeros(2, 3, 40, 40), tmp_path / "dyn.onnx", ["emb"],
                  dynamic_hw=True)
    with pytest.raises(ModelError, match=r"no fixed height.*`size`"):
        FaceExtractor(FaceConfig(model_path=str(dyn)))
    (tmp_path / "dyn.json").write_text(json.dumps({"size": 48}))
    ok = FaceExtractor(FaceConfig(model_path=str(dyn)))
    assert [(o.name, o.width) for o in ok.model.outputs] == [("emb", 5)]
    (tmp_path / "dyn.json").write_text(json.dumps({"size": 48, "outputs": {"e": "nope"}}))
    with pytest.raises(ModelError, match=r"no output 'nope'.*dyn\.onnx"):
        FaceExtractor(FaceConfig(model_path=str(dyn)))
    (tmp_path / "dyn.json").write_text(json.dumps({"size": 48, "colour": "rgb"}))
    with pytest.raises(ModelError, match=r"sidecar.*dyn\.json"):
        FaceExtractor(FaceConfig(model_path=str(dyn)))
    (tmp_path / "dyn.json").write_text(json.dumps({"size": 48, "sha256": "0" * 64}))
    with pytest.raises(ModelError, match=r"SHA-256"):
        FaceExtractor(FaceConfig(model_path=str(dyn)))


def test_onnx_output_names_become_array_names() -> None:
    assert array_name("Expression/Logits:0") == "expression_logits_0"
    assert array_name("512") == "out_512"
