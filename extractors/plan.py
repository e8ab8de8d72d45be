"""Extraction plans: the feature sets to extract, each a registered extractor with its
options, given as names (``face,words``: default options) or as a YAML file::

    face: {}                          # the default FER model
    face_resnet:                      # a second face model, its own feature set
      extractor: face
      model_path: /models/resnet50_affectnet.onnx
    words:
      asr_model_dir: /models/whisper-large-v3-ct2
      embedding_model: /models/bert-base-uncased   # a sentence-transformers folder

Each top-level key names a feature set (``[a-z][a-z0-9_]*``; stored ids are
``<name>-<12 hex>``); ``extractor`` defaults to the name; every other key is a field
of that extractor's config dataclass (nested configs as mappings, e.g.
``detector: {threshold: 0.6}``), validated with pydantic: an unknown key or a value
of the wrong type is an error naming the plan file, the feature set and the field.

A :data:`Plan` is a tuple of frozen, hashable :class:`PlanEntry`, so it travels to
Dask workers and keys their worker contexts (:mod:`extractors.context`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from extractors.base import Extractor, get_extractor
from extractors.runtime import Runtime
from store.errors import ConfigError

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


@dataclass(frozen=True)
class PlanEntry:
    """One feature set: its name, the registered extractor, options as canonical JSON."""

    name: str
    extractor: str
    options: str = "{}"

    def config(self, where: str = "") -> Any:
        """The extractor's frozen config with these options (validated)."""
        cls = get_extractor(self.extractor)
        opts = json.loads(self.options)
        _check_keys(cls.Config, opts, f"{where}{self.name}")
        try:
            return TypeAdapter(cls.Config).validate_python(opts)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"feature set {self.name!r}: {field}: {err['msg']}",
                              path=where.rstrip(": ") or None,
                              expected=f"options of {cls.Config.__name__}") from exc

    def build(self, runtime: Runtime | None = None) -> Extractor:
        """The extractor on ``runtime`` (device setting and threads; default: auto),
        its model files checked and hashed and its arrays declared; its models are
        loaded by :meth:`Extractor.load` (a worker context, or first use)."""
        extractor = get_extractor(self.extractor)(self.config(), runtime)
        extractor.label = self.name
        return extractor


Plan = tuple[PlanEntry, ...]


def _check_keys(config_cls: Any, options: Any, where: str) -> None:
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: options are {type(options).__name__}",
                          expected="a mapping of option names to values")
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown option {unknown[0]!r}",
                          expected=f"options of {config_cls.__name__}: {', '.join(fields)}")
    for key, value in options.items():
        factory = fields[key].default_factory
        if factory is not dataclasses.MISSING and dataclasses.is_dataclass(factory):
            _check_keys(factory, value, f"{where}.{key}")  # a nested config


def entry(name: str, extractor: str = "", options: dict[str, Any] | None = None) -> PlanEntry:
    """A checked entry (the extractor exists, the name is valid)."""
    if not _NAME.match(name):
        raise ConfigError(f"bad feature set name {name!r}", expected="[a-z][a-z0-9_]{0,47}")
    get_extractor(extractor or name)
    return PlanEntry(name, extractor or name, json.dumps(options or {}, sort_keys=True))


def plan_from_names(names: Iterable[str]) -> Plan:
    """Registered extractors with their default options."""
    plan = tuple(entry(n) for n in names)
    if not plan:
        raise ConfigError("no extractor chosen", expected="one or more extractor names")
    return plan


def choose_plan(names: Sequence[str] | None, path: str | Path | None,
                default: Sequence[str]) -> Plan:
    """The plan of a run, checked once where it starts: the plan file at ``path``, else
    the extractors ``names``, else ``default``; both given is refused."""
    if path and names:
        raise ConfigError("give --extractors or --plan, not both",
                          expected="extractor names, or a plan file (docs/models.md)")
    return read_plan(Path(path)) if path else plan_from_names(list(names or default))


def as_plan(value: Plan | Sequence[str] | Sequence[dict[str, str]]) -> Plan:
    """A plan from a plan, extractor names, or the JSON form (:func:`plan_to_json`)."""
    items = list(value)
    if all(isinstance(i, PlanEntry) for i in items):
        return tuple(items)  # type: ignore[arg-type]
    if all(isinstance(i, str) for i in items):
        return plan_from_names(items)  # type: ignore[arg-type]
    return tuple(PlanEntry(**i) for i in items)  # type: ignore[arg-type]


def plan_to_json(plan: Plan) -> list[dict[str, str]]:
    return [dataclasses.asdict(e) for e in plan]


def read_plan(path: Path) -> Plan:
    """A plan from a YAML file (safe loader); every entry's options validated."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("plan file not found", path=path,
                          expected="a YAML file of feature sets") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"unreadable YAML: {exc}".splitlines()[0], path=path,
                          expected="a YAML mapping of feature set names") from exc
    if not isinstance(data, dict) or not data:
        raise ConfigError("the plan is not a mapping of feature sets", path=path,
                          expected="feature set name -> options (e.g. `face: {}`)")
    plan = []
    for name, options in data.items():
        opts = dict(options or {}) if isinstance(options, dict) or options is None else options
        if not isinstance(opts, dict):
            raise ConfigError(f"feature set {name!r} has {type(options).__name__} options",
                              path=path, expected="a mapping (or nothing)")
        extractor = str(opts.pop("extractor", name))
        try:
            e = entry(str(name), extractor, opts)
        except ConfigError as exc:
            raise ConfigError(exc.message, path=path, expected=exc.expected) from exc
        e.config(f"{path}: ")
        plan.append(e)
    return tuple(plan)
