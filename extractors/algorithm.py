"""The code that computes an extractor's numbers, as text to hash, so that a test can
hold an extractor without a model file to its declared
:attr:`~extractors.base.Extractor.algorithm_version`.

:func:`computing_source` starts from the extractor's class and follows, through the
names its source uses, every function of the ``extractors`` package it reaches (in the
module namespace where each is used), and the values of the module-level constants
they name (sizes, rates, thresholds); decorated functions (``lru_cache``) are
followed to what they wrap. A change to any of them changes the text.
Classes other than the extractor (its base classes, configs, specs) are not followed:
the config's identity fields already enter the id, and the base classes do not
compute numbers.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import sys
from collections.abc import Callable
from typing import Any

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONSTANT = (int, float, str, bytes, bool, tuple, frozenset)


def _ours(obj: Any) -> bool:
    return str(getattr(obj, "__module__", "")).startswith("extractors.")


def computing_source(cls: type) -> str:
    """The source of ``cls`` and of what it computes with (see the module docstring),
    in a stable order."""
    parts: dict[str, str] = {}
    todo: list[Callable[..., Any] | type] = [cls]
    while todo:
        obj = todo.pop()
        key = f"{obj.__module__}.{obj.__qualname__}"
        if key in parts:
            continue
        source = inspect.getsource(obj)
        module = sys.modules[obj.__module__]
        constants = []
        for name in sorted(set(_NAME.findall(source))):
            ref = inspect.unwrap(getattr(module, name)) if hasattr(module, name) else None
            if inspect.isfunction(ref) and _ours(ref):
                todo.append(ref)
            elif isinstance(ref, _CONSTANT) and name.lstrip("_").isupper():
                constants.append(f"{name} = {ref!r}")
        parts[key] = "\n".join([source, *constants])
    return "\n\n".join(f"# {k}\n{parts[k]}" for k in sorted(parts))


def computing_sha256(cls: type) -> str:
    """SHA-256 of :func:`computing_source`."""
    return hashlib.sha256(computing_source(cls).encode()).hexdigest()
