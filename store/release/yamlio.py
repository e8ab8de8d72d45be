"""Safe YAML loading for BAH annotation files.

The Whisper transcription files tag timestamps with ``!!python/tuple``. We accept
exactly that tag (as a list of plain scalars) on a safe loader; every other
``python/...`` tag, and any other unknown tag, is rejected with the file named.

YAML aliases are refused: the release uses none, and an alias bomb (a few lines
whose aliases expand to billions of nodes) would exhaust memory in whatever walks
the result. A fast scan of the text looks for anchors; only a file where it finds
one is loaded by the loader that refuses a node met twice, so ordinary files pay
nothing for the check.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from store.errors import DatasetLayoutError, UnsafeYamlError

_TUPLE_TAG = "tag:yaml.org,2002:python/tuple"


_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class BahSafeLoader(_Base):  # type: ignore[valid-type,misc]
    """Safe loader (libyaml when present) that knows ``!!python/tuple`` and nothing else."""


def _construct_tuple(loader: yaml.SafeLoader, node: yaml.Node) -> tuple[Any, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise yaml.constructor.ConstructorError(
            None, None, "!!python/tuple must tag a sequence", node.start_mark
        )
    return tuple(loader.construct_sequence(node, deep=True))


def _reject_unknown(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    raise yaml.constructor.ConstructorError(
        None, None, f"tag {node.tag!r} is not allowed", node.start_mark
    )


BahSafeLoader.add_constructor(_TUPLE_TAG, _construct_tuple)
BahSafeLoader.add_multi_constructor("", _reject_unknown)

#: where YAML could define an anchor: ``&name`` after a line start, a space or a
#: flow indicator (``R&D`` in a sentence is not one)
_ANCHOR = re.compile(r"(?:^|[\s\[\]{},])&[^\s\[\]{},]+", re.MULTILINE)


class NoAliasLoader(BahSafeLoader):
    """:class:`BahSafeLoader` that refuses any node constructed twice: an alias."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        if node in self.constructed_objects:
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases are not allowed (an alias bomb can exhaust "
                "memory)", node.start_mark)
        return super().construct_object(node, deep)


def load_yaml(path: Path) -> Any:
    """Load one YAML file safely; raise a bahfs error naming the file on any problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DatasetLayoutError("file not found", path=path) from exc
    except UnicodeDecodeError as exc:
        raise DatasetLayoutError("file is not UTF-8 text", path=path) from exc
    loader = NoAliasLoader if _ANCHOR.search(text) else BahSafeLoader
    try:
        return yaml.load(text, Loader=loader)
    except yaml.constructor.ConstructorError as exc:
        raise UnsafeYamlError(
            f"refused YAML ({exc.problem}; {exc.problem_mark})",
            path=path,
            expected="plain YAML without aliases; the only python tag allowed is "
                     "!!python/tuple",
        ) from exc
    except yaml.YAMLError as exc:
        raise DatasetLayoutError(f"invalid YAML: {exc}", path=path) from exc


def dump_yaml(data: Any) -> str:
    """Dump plain data deterministically (sorted keys off: keep the given order)."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1000)
