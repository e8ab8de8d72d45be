"""Extractors from other packages, through the ``bahfs.extractors`` entry-point group.

An installed package registers its own extractor without forking bahfs: in its
``pyproject.toml``::

    [project.entry-points."bahfs.extractors"]
    peak = "bahfs_peak:PeakExtractor"

The entry point's name is the extractor's ``name``; its value is an
:class:`extractors.base.Extractor` subclass (a frozen config dataclass as ``Config``,
``outputs`` and ``compute``, as every extractor). Importing :mod:`extractors` loads
every such entry point into the registry, so ``--extractors peak``, a plan's
``extractor: peak`` and Dask workers see it as they see bahfs's own. A plugin that
fails to load, is not an extractor, or takes a name already taken is left out, and
asking for its name raises a :class:`store.errors.ConfigError` saying why (the
reasons are in :data:`extractors.base.LEFT_OUT`). The plugin's package can run
bahfs's contract suite on its extractor (:mod:`extractors.testing`).
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from extractors.base import LEFT_OUT, REGISTRY, Extractor, register

GROUP = "bahfs.extractors"


def _where(ep: EntryPoint) -> str:
    dist = ep.dist.name if ep.dist is not None else "an unknown distribution"
    return f"entry point {ep.name} = {ep.value} of {dist} (group {GROUP})"


def _load(ep: EntryPoint) -> str:
    """Register one entry point's extractor; the reason it was refused, or ""."""
    try:
        cls = ep.load()
    except Exception as exc:  # a plugin's own import error must not stop bahfs
        return f"{_where(ep)} failed to import: {type(exc).__name__}: {exc}"
    if not (isinstance(cls, type) and issubclass(cls, Extractor)):
        return f"{_where(ep)} is not an extractors.base.Extractor subclass"
    if getattr(cls, "name", None) != ep.name:
        return f"{_where(ep)}: the class's name is {getattr(cls, 'name', None)!r}"
    if ep.name in REGISTRY and REGISTRY[ep.name] is not cls:
        return f"{_where(ep)}: the name {ep.name!r} is taken by " \
               f"{REGISTRY[ep.name].__module__}.{REGISTRY[ep.name].__qualname__}"
    register(cls)
    return ""


def load_plugins() -> dict[str, str]:
    """Register every installed plugin extractor; those left out, with why."""
    for ep in entry_points(group=GROUP):
        why = _load(ep)
        if why:
            LEFT_OUT[ep.name] = why
    return dict(LEFT_OUT)
