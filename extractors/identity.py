"""Which fields of an extractor config are identity and which are run options.

A feature set's id (:class:`store.features.FeatureSetSpec`) hashes what changes its
numbers: the model (by SHA-256), preprocessing, thresholds, sizes and the declared
arrays. How fast or where a run goes (batch sizes, device, threads, workers,
read-ahead) never enters it: two labs with different GPUs get the same ids.

Every field of a config dataclass says which it is, in its field metadata, through
one of two helpers::

    @dataclass(frozen=True)
    class FaceDetectConfig:
        threshold: float = identity(0.5)
        batch: int = run_option(16)
        detector: FaceDetectConfig = field(default_factory=FaceDetectConfig,
                                           metadata=IDENTITY_FIELD)  # nested

A nested config field is identity, and its own fields are split the same way. A run
option that still decides something about the numbers gives ``identity_as``: the
name and function of what enters the id instead (``words``' ``asr_batch_size``: its
value is a run option, whether Whisper runs batched at all is identity). A field
without either marker is refused (:func:`split_config`), so a new field must be
declared before any feature set is made with it.

Device and threads are not config fields at all: they are passed to an extractor
when it is built (:class:`extractors.runtime.Runtime`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from store.errors import ConfigError

KIND = "bahfs"  # the metadata key
IDENTITY, RUN_OPTION = "identity", "run_option"
_AS = "bahfs_identity_as"
#: The metadata of an identity field (for ``field(default_factory=..., metadata=...)``).
IDENTITY_FIELD = {KIND: IDENTITY}


def identity(default: Any = dataclasses.MISSING, *,
             default_factory: Any = dataclasses.MISSING) -> Any:
    """A config field that enters the feature-set id."""
    return dataclasses.field(default=default, default_factory=default_factory,
                             metadata={KIND: IDENTITY})


def run_option(default: Any, *,
               identity_as: tuple[str, Callable[[Any], Any]] | None = None) -> Any:
    """A config field that only changes how a run goes, not the numbers; with
    ``identity_as=(name, f)``, ``f(value)`` enters the id under ``name``."""
    meta: dict[str, Any] = {KIND: RUN_OPTION}
    if identity_as is not None:
        meta[_AS] = identity_as
    return dataclasses.field(default=default, metadata=meta)


def field_kind(f: dataclasses.Field[Any], owner: type) -> str:
    kind = f.metadata.get(KIND)
    if kind not in (IDENTITY, RUN_OPTION):
        raise ConfigError(f"{owner.__name__}.{f.name} is neither identity nor a run option",
                          expected="the field declared with extractors.identity.identity() "
                                   "or run_option()")
    return str(kind)


def _nested(f: dataclasses.Field[Any]) -> type | None:
    factory = f.default_factory
    return factory if isinstance(factory, type) and dataclasses.is_dataclass(factory) \
        else None


def split_values(config_cls: type, values: dict[str, Any]
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``values`` (a config as ``dataclasses.asdict`` gives it, or as an older store
    recorded it) split into (identity, run options); nested configs likewise, their
    run options under the nested field's name."""
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    ident: dict[str, Any] = {}
    run: dict[str, Any] = {}
    for name, value in values.items():
        f = fields.get(name)
        if f is None:  # recorded by another version of the config: kept as identity
            ident[name] = value
            continue
        kind = field_kind(f, config_cls)
        sub = _nested(f)
        if sub is not None and isinstance(value, dict):
            ident[name], inner = split_values(sub, value)
            if inner:
                run[name] = inner
        elif kind == IDENTITY:
            ident[name] = value
        else:
            run[name] = value
            if _AS in f.metadata:
                key, fn = f.metadata[_AS]
                ident[key] = fn(value)
    return ident, run


def split_config(config: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A frozen config dataclass split into (identity, run options), both plain dicts."""
    return split_values(type(config), dataclasses.asdict(config))


def walk_fields(config_cls: type, prefix: str = "") -> list[tuple[str, str]]:
    """Every leaf field of a config, nested ones included: (dotted path, kind)."""
    out: list[tuple[str, str]] = []
    for f in dataclasses.fields(config_cls):
        kind = field_kind(f, config_cls)
        sub = _nested(f)
        if sub is not None:
            out += walk_fields(sub, f"{prefix}{f.name}.")
        else:
            out.append((f"{prefix}{f.name}", kind))
    return out
