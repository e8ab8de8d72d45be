"""The typed contract between extractors (which produce arrays) and the store (which
keeps them): a feature set's declared spec, and one video's validated output.

Every per-frame array has the video's decoded frame count as its first dimension.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from store.errors import ConfigError, CorruptError, StoreError

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


@dataclass(frozen=True)
class ArraySpec:
    """One per-frame output: ``(n_frames, *shape)`` of ``dtype``."""

    name: str
    dtype: str
    shape: tuple[int, ...] = ()
    doc: str = ""

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ConfigError(f"bad array name {self.name!r}", expected="[a-z][a-z0-9_]*")
        np.dtype(self.dtype)  # raises TypeError on nonsense


@dataclass(frozen=True)
class FeatureSetSpec:
    """What identifies a feature set: extractor name, its config, the model's sha256,
    and the arrays it produces. Same inputs, same id; another model or config, another
    feature set beside the old one. ``name`` (default: the extractor's) prefixes the id,
    so two feature sets of one extractor can be told apart by name (``face_resnet``)."""

    extractor: str
    config: dict[str, Any]
    model_sha256: str
    arrays: tuple[ArraySpec, ...]
    extra: dict[str, Any] = field(default_factory=dict)  # provenance that is not identity
    name: str = ""  # the feature set's name; empty: the extractor's

    @property
    def label(self) -> str:
        return self.name or self.extractor

    def __post_init__(self) -> None:
        for what, value in (("extractor", self.extractor), ("feature set", self.label)):
            if not _NAME_RE.match(value):
                raise ConfigError(f"bad {what} name {value!r}", expected="[a-z][a-z0-9_]*")
        names = [a.name for a in self.arrays]
        if len(set(names)) != len(names) or not names:
            raise ConfigError(f"feature set {self.extractor!r}: array names {names}",
                              expected="one or more distinct names")

    @property
    def id(self) -> str:
        """``<extractor>-<12 hex>``: a hash of config, model and array specs."""
        ident = json.dumps({"config": self.config, "model_sha256": self.model_sha256,
                            "arrays": [[a.name, a.dtype, list(a.shape)] for a in self.arrays]},
                           sort_keys=True, default=str)
        return f"{self.label}-{hashlib.sha256(ident.encode()).hexdigest()[:12]}"

    def to_attrs(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.label, "extractor": self.extractor,
                "config": self.config,
                "model_sha256": self.model_sha256, "extra": self.extra,
                "arrays": [{"name": a.name, "dtype": a.dtype, "shape": list(a.shape),
                            "doc": a.doc} for a in self.arrays]}

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> FeatureSetSpec:
        try:
            return cls(extractor=attrs["extractor"], config=dict(attrs["config"]),
                       model_sha256=attrs["model_sha256"], extra=dict(attrs.get("extra", {})),
                       name=attrs.get("name", "") if attrs.get("name") != attrs["extractor"]
                       else "",
                       arrays=tuple(ArraySpec(a["name"], a["dtype"], tuple(a["shape"]),
                                              a.get("doc", "")) for a in attrs["arrays"]))
        except (KeyError, TypeError) as exc:
            raise CorruptError(f"feature set attributes lack {exc}",
                               expected="extractor, config, model_sha256, arrays") from exc


@dataclass(frozen=True)
class VideoFeatures:
    """One video's output of one extractor, checked against its spec on construction."""

    spec: FeatureSetSpec
    video_id: str
    participant_id: str
    timestamps: np.ndarray  # (n_frames,) float64 presentation times, seconds
    arrays: dict[str, np.ndarray]
    attrs: dict[str, Any] = field(default_factory=dict)  # e.g. transcript, language

    @property
    def n_frames(self) -> int:
        return int(self.timestamps.shape[0])

    def __post_init__(self) -> None:
        n = self.n_frames
        where = f"feature set {self.spec.id}, video {self.video_id}"
        if self.timestamps.ndim != 1 or n == 0:
            raise StoreError(f"{where}: timestamps of shape {self.timestamps.shape}",
                             video=self.video_id, expected="(n_frames,) with n_frames > 0")
        declared = {a.name: a for a in self.spec.arrays}
        if set(self.arrays) != set(declared):
            raise StoreError(f"{where}: arrays {sorted(self.arrays)}", video=self.video_id,
                             expected=f"exactly {sorted(declared)}")
        for name, arr in self.arrays.items():
            a = declared[name]
            want = (n, *a.shape)
            if arr.shape != want or arr.dtype != np.dtype(a.dtype):
                raise StoreError(
                    f"{where}: array {name!r} is {arr.dtype}{list(arr.shape)}",
                    video=self.video_id, expected=f"{a.dtype}{list(want)}")
