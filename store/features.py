"""The typed contract between extractors (which produce arrays) and the store (which
keeps them): a feature set's declared spec, and one video's validated output.

Every per-frame array has the video's decoded frame count as its first dimension,
named ``frame``; each further axis has a name (declared, or ``<array>_component``) and
may label its columns, stored beside the arrays as a coordinate of that name.
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
_DIM_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
#: The first axis of every per-frame array; ``timestamps`` is its coordinate.
FRAME = "frame"
TIMESTAMPS = "timestamps"
TIMESTAMPS_DOC = "presentation time of each frame, seconds"


@dataclass(frozen=True)
class ArraySpec:
    """One per-frame output: ``(n_frames, *shape)`` of ``dtype``.

    ``dims`` names the axes after ``frame`` (empty: ``<name>_component`` for one axis,
    ``<name>_axis1``, ``<name>_axis2``... for more); ``labels`` gives, per axis, the
    names of its columns (an empty tuple for an axis without them). Neither is part of
    the feature set's id: they name the numbers, they do not change them."""

    name: str
    dtype: str
    shape: tuple[int, ...] = ()
    doc: str = ""
    dims: tuple[str, ...] = ()
    labels: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ConfigError(f"bad array name {self.name!r}", expected="[a-z][a-z0-9_]*")
        np.dtype(self.dtype)  # raises TypeError on nonsense
        where = f"array {self.name!r} of shape {list(self.shape)}"
        if self.dims and (len(self.dims) != len(self.shape) or len(set(self.dims)) != len(
                self.dims) or any(not _DIM_RE.match(d) or d in (FRAME, TIMESTAMPS, self.name)
                                  for d in self.dims)):
            raise ConfigError(f"{where}: axis names {list(self.dims)}",
                              expected=f"{len(self.shape)} distinct [a-z][a-z0-9_]* names, "
                                       f"not {FRAME!r}, {TIMESTAMPS!r} nor the array's")
        if self.labels and (len(self.labels) != len(self.shape) or any(
                lab and (len(lab) != n or len(set(lab)) != n
                         or not all(isinstance(x, str) and x for x in lab))
                for lab, n in zip(self.labels, self.shape, strict=True))):
            raise ConfigError(f"{where}: column labels {[list(x) for x in self.labels]}",
                              expected="per axis, no labels or one distinct name per column")

    @property
    def dimension_names(self) -> tuple[str, ...]:
        """Every axis's name, ``frame`` first."""
        if self.dims:
            return (FRAME, *self.dims)
        if len(self.shape) == 1:
            return (FRAME, f"{self.name}_component")
        return (FRAME, *(f"{self.name}_axis{i}" for i in range(1, len(self.shape) + 1)))

    def coordinates(self) -> dict[str, tuple[str, ...]]:
        """The labelled axes: axis name -> its columns' names."""
        return {d: lab for d, lab in zip(self.dimension_names[1:], self.labels, strict=False)
                if lab}

    def to_attrs(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape),
                "doc": self.doc, "dims": list(self.dims),
                "labels": [list(lab) for lab in self.labels]}

    @classmethod
    def from_attrs(cls, a: dict[str, Any]) -> ArraySpec:
        """From :meth:`to_attrs`; attributes written before axes were named have none."""
        return cls(a["name"], a["dtype"], tuple(a["shape"]), a.get("doc", ""),
                   tuple(a.get("dims", ())), tuple(tuple(x) for x in a.get("labels", ())))


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
        self.coordinates()  # the arrays' axes agree with each other

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
                "arrays": [a.to_attrs() for a in self.arrays]}

    def coordinates(self) -> dict[str, tuple[str, ...]]:
        """Every labelled axis of the feature set: axis name -> its columns' names.
        An axis name used by several arrays has one size and one set of labels, and no
        axis is named after an array (what xarray needs to read a video as one Dataset)."""
        sizes: dict[str, int] = {}
        coords: dict[str, tuple[str, ...]] = {}
        arrays = {a.name for a in self.arrays} | {TIMESTAMPS}
        for a in self.arrays:
            for dim, n in zip(a.dimension_names[1:], a.shape, strict=True):
                if sizes.setdefault(dim, n) != n or (a.dims and dim in arrays):
                    raise ConfigError(f"feature set {self.label!r}: axis {dim!r} of array "
                                      f"{a.name!r}", expected="one size per axis name, and "
                                      "no axis named after an array")
            for dim, lab in a.coordinates().items():
                if coords.setdefault(dim, lab) != lab:
                    raise ConfigError(f"feature set {self.label!r}: axis {dim!r} labelled "
                                      f"{list(lab)} and {list(coords[dim])}",
                                      expected="one set of labels per axis name")
        return coords

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> FeatureSetSpec:
        try:
            return cls(extractor=attrs["extractor"], config=dict(attrs["config"]),
                       model_sha256=attrs["model_sha256"], extra=dict(attrs.get("extra", {})),
                       name=attrs.get("name", "") if attrs.get("name") != attrs["extractor"]
                       else "",
                       arrays=tuple(ArraySpec.from_attrs(a) for a in attrs["arrays"]))
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
