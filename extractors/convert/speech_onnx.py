"""Hugging Face speech models (wav2vec2, HuBERT, WavLM, data2vec-audio: base models and
fine-tunes alike) exported to ONNX once, cached by the folder's hash.

A model folder holds ``config.json``, ``preprocessor_config.json`` and its weights
(``model.safetensors`` or ``pytorch_model.bin``). Its export goes to
``$BAHFS_MODELS/speech-models/<folder name>-<12 hex of the folder's hash>-rows-first-gn/
model.onnx``,
built in a temporary folder and renamed into place (safe with many workers), with a
``bahfs-export.json`` recording the folder's hash, the ONNX file's SHA-256 and the
exporter's versions; the ONNX file is checked against it on every load. The ONNX
graph takes ``input_values`` (batch, samples) and gives ``hidden_states`` (batch,
layers + 1, frames, width; rows first, so calls of several videos batch together):
the model's every hidden state, the feature projection first (index 0) and each
transformer layer after it. A model whose first convolution is group-normalised
(``feat_extract_norm: group``, the base models) normalises each channel over the
whole input; its graph takes that channel's mean and variance as two more inputs,
``conv0_mean`` and ``conv0_var`` (batch, channels), so that a window of a soundtrack
is normalised as the whole soundtrack is (:func:`conv0_stats`). It is exported by
torch's TorchScript exporter (opset 17) from transformers' ``AutoModel`` in eval mode.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from extractors.models import EXPORT_MANIFEST, models_dir, publish_export
from extractors.runtime import check_model, sha256_cached, sha256_file
from store.errors import ModelError

#: What the exported graph gives (its name is part of the cache folder's).
EXPORT_LAYOUT = "rows-first-gn"
CONV0 = "conv0.npy"
FAMILIES = ("wav2vec2", "hubert", "wavlm", "data2vec-audio")
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_MANIFEST = EXPORT_MANIFEST
EXPECTED = "a Hugging Face speech model folder (config.json of model_type " \
           f"{', '.join(FAMILIES)}; preprocessor_config.json; model.safetensors or " \
           "pytorch_model.bin)"


def read_folder(folder: Path) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """The folder's model config, preprocessor config and weights file, checked."""
    folder = Path(folder)
    try:
        config = json.loads((folder / "config.json").read_text())
        pre = json.loads((folder / "preprocessor_config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"unreadable speech model folder: {exc}", path=folder,
                         expected=EXPECTED) from exc
    if config.get("model_type") not in FAMILIES:
        raise ModelError(f"model_type {config.get('model_type')!r} is not a supported speech "
                         "model", path=folder / "config.json", expected=EXPECTED)
    weights = next((folder / w for w in _WEIGHTS if (folder / w).is_file()), None)
    if weights is None:
        raise ModelError("no model weights in the folder", path=folder, expected=EXPECTED)
    return config, pre, weights


def folder_sha256(folder: Path) -> str:
    """SHA-256 over the files that decide the model's numbers: config.json,
    preprocessor_config.json and the weights (their names and contents)."""
    _, _, weights = read_folder(folder)
    h = hashlib.sha256()
    for f in (Path(folder) / "config.json", Path(folder) / "preprocessor_config.json", weights):
        h.update(f.name.encode())
        h.update(bytes.fromhex(sha256_cached(f)))
    return h.hexdigest()


def export_record(onnx_path: Path) -> tuple[dict[str, Any], np.ndarray]:
    """The export record beside an exported model, and its first convolution's
    weights ``(channels, kernel)``."""
    record = json.loads((onnx_path.parent / _MANIFEST).read_text())
    return record, np.load(onnx_path.parent / CONV0)


def onnx_model(folder: Path) -> tuple[Path, str]:
    """The ONNX export of ``folder`` (made the first time) and the folder's hash; its
    export record and first-convolution weights (``conv0.npy``) lie beside it."""
    source_sha = folder_sha256(folder)
    dest = models_dir() / "speech-models" / \
        f"{Path(folder).name}-{source_sha[:12]}-{EXPORT_LAYOUT}"
    if not (dest / _MANIFEST).is_file():
        _export(Path(folder), dest, source_sha)
    manifest = json.loads((dest / _MANIFEST).read_text())
    check_model(dest / "model.onnx", manifest["onnx_sha256"])
    return dest / "model.onnx", source_sha


def _export(folder: Path, dest: Path, source_sha: str) -> None:
    import torch
    import transformers

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        work = tmp / "model"
        work.mkdir()
        model = transformers.AutoModel.from_pretrained(str(folder)).eval()
        if getattr(model.config, "add_adapter", False):
            raise ModelError("a model with an adapter after its encoder", path=folder,
                             expected=EXPECTED)
        group = getattr(model.config, "feat_extract_norm", "layer") == "group"
        wrapper = all_hidden_states(model, group).eval()
        conv0 = model.feature_extractor.conv_layers[0].conv.weight.detach().numpy()[:, 0]
        np.save(work / CONV0, conv0.astype(np.float64))  # (channels, kernel)
        inputs = (torch.zeros(1, 16_000),) + ((torch.zeros(1, conv0.shape[0]),
                                               torch.ones(1, conv0.shape[0])) if group else ())
        names = ["input_values", *(("conv0_mean", "conv0_var") if group else ())]
        with torch.no_grad():
            torch.onnx.export(
                wrapper, inputs, str(work / "model.onnx"), input_names=names,
                output_names=["hidden_states"],
                dynamic_axes={"input_values": {0: "batch", 1: "samples"},
                              **{n: {0: "batch"} for n in names[1:]},
                              "hidden_states": {0: "batch", 2: "frames"}},
                opset_version=17, dynamo=False)
        publish_export(work, dest, {
            "group_norm": group, "conv0_stride": int(model.config.conv_stride[0]),
            "source": str(folder), "source_sha256": source_sha,
            "onnx_sha256": sha256_file(work / "model.onnx"),
            "exported_by": f"torch {torch.__version__} (TorchScript exporter, opset 17), "
                           f"transformers {transformers.__version__}"})
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"export to ONNX failed: {type(exc).__name__}: {exc}", path=folder,
                         expected=EXPECTED) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _all_hidden_states_module() -> Any:
    import torch

    class AllHiddenStates(torch.nn.Module):
        """Every hidden state of a transformers speech model, stacked on axis 1. With
        ``group``, the first convolution's group norm takes its per-channel mean and
        variance as inputs (those of the whole soundtrack) instead of the input's."""

        def __init__(self, model: Any, group: bool) -> None:
            super().__init__()
            self.model, self.group = model, group

        def forward(self, input_values: Any, mean: Any = None, var: Any = None) -> Any:
            if not self.group:
                out = self.model(input_values, output_hidden_states=True)
                return torch.stack(out.hidden_states, 1)
            layers = self.model.feature_extractor.conv_layers
            first = layers[0]
            x = first.conv(input_values[:, None])
            norm = first.layer_norm
            x = (x - mean[:, :, None]) / torch.sqrt(var[:, :, None] + norm.eps)
            x = first.activation(x * norm.weight[None, :, None] + norm.bias[None, :, None])
            for layer in layers[1:]:
                x = layer(x)
            projected = self.model.feature_projection(x.transpose(1, 2))
            hidden = projected[0] if isinstance(projected, tuple) else projected
            out = self.model.encoder(hidden, output_hidden_states=True)
            return torch.stack(out.hidden_states, 1)

    return AllHiddenStates


def all_hidden_states(model: Any, group: bool = False) -> Any:
    """``model`` wrapped to give its hidden states stacked (a torch module)."""
    return _all_hidden_states_module()(model, group)


def conv0_stats(audio: np.ndarray, conv0: np.ndarray, stride: int) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """Per channel, the mean and (biased) variance over time of the first convolution
    of ``audio`` (what a group norm over the whole soundtrack uses): from the mean and
    the second moments of the input's frames, never the convolution itself."""
    kernel = conv0.shape[1]
    frames = np.lib.stride_tricks.sliding_window_view(audio.astype(np.float64),
                                                      kernel)[::stride]
    mean_frame = frames.mean(axis=0)
    second = frames.T @ frames / frames.shape[0]  # (kernel, kernel)
    mean = conv0 @ mean_frame
    var = np.einsum("ck,kl,cl->c", conv0, second, conv0) - mean ** 2
    return mean, np.maximum(var, 0.0)
