"""Safe YAML loading for BAH annotation files.

The Whisper transcription files tag timestamps with ``!!python/tuple``. We accept
exactly that tag (as a list of plain scalars) on a safe loader; every other
``python/...`` tag, and any other unknown tag, is rejected with the file named.

YAML aliases are refused: the release uses none, and an alias bomb (a few lines
whose aliases expand to billions of nodes) would exhaust memory in whatever walks
the result. The loader refuses an alias the moment the parser meets one.

Memory: a document whose top is a mapping (the annotation files: video -> entry) is
read from the file as a stream of parser events (libyaml when present) and built
one entry at a time: the node tree of one entry exists at a time, never the
file's, so the peak is the loaded data plus one entry. Composing the whole
document first (``yaml.load``) peaked at ~19x the file's size (a 22.7 MB
annotation file: 418 MB), the data itself is a fraction of that
(``tests/store/release/test_big_yaml.py``).
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import IO, Any

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

class _EntryLoader(BahSafeLoader, yaml.composer.Composer):
    """:class:`BahSafeLoader` with Python's composer over the (C) parser's events, so
    that a document can be composed and constructed piece by piece; refuses aliases."""

    def __init__(self, stream: IO[str]) -> None:
        _Base.__init__(self, stream)
        self.anchors: dict[str, yaml.Node] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            raise yaml.constructor.ConstructorError(
                None, None, "YAML aliases are not allowed (an alias bomb can exhaust "
                "memory)", self.peek_event().start_mark)
        node = yaml.composer.Composer.compose_node(self, parent, index)
        if node is None:
            raise yaml.composer.ComposerError(None, None, "no node where one was expected",
                                              self.peek_event().start_mark)
        return node

    def one(self) -> Any:
        """Construct the next node whole, then forget its nodes."""
        data = self.construct_object(self.compose_node(None, None), deep=True)
        self.constructed_objects.clear()
        self.recursive_objects.clear()
        self.anchors.clear()
        return data


_MAP_TAGS = (None, "!", "tag:yaml.org,2002:map")


class DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: Any, first: int, again: int) -> None:
        super().__init__(f"{key!r} is listed twice (lines {first} and {again})")
        self.key = key


def _load(loader: _EntryLoader) -> Any:
    """The single document of the stream; a top-level mapping entry by entry."""
    loader.get_event()  # stream start
    if loader.check_event(yaml.StreamEndEvent):
        return None
    loader.get_event()  # document start
    start = loader.peek_event()
    if not isinstance(start, yaml.MappingStartEvent) or start.tag not in _MAP_TAGS:
        data = loader.one()
    else:
        loader.get_event()
        data = {}
        lines: dict[Any, int] = {}
        while not loader.check_event(yaml.MappingEndEvent):
            mark = loader.peek_event().start_mark
            key = loader.one()
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", None,
                    "found unhashable key", mark)
            if key in lines:  # PyYAML would keep the last silently
                raise DuplicateKeyError(key, lines[key], mark.line + 1)
            lines[key] = mark.line + 1
            data[key] = loader.one()
        loader.get_event()  # mapping end
    loader.get_event()  # document end
    if not loader.check_event(yaml.StreamEndEvent):
        raise yaml.composer.ComposerError(
            "expected a single document in the stream", start.start_mark,
            "but found another document", loader.peek_event().start_mark)
    return data


def load_yaml(path: Path) -> Any:
    """Load one YAML file safely; raise a bahfs error naming the file on any problem."""
    try:
        with open(path, encoding="utf-8") as fh:
            loader = _EntryLoader(fh)
            try:
                return _load(loader)
            finally:
                loader.dispose()
    except FileNotFoundError as exc:
        raise DatasetLayoutError("file not found", path=path) from exc
    except UnicodeDecodeError as exc:
        raise DatasetLayoutError("file is not UTF-8 text", path=path) from exc
    except yaml.constructor.ConstructorError as exc:
        raise UnsafeYamlError(
            f"refused YAML ({exc.problem}; {exc.problem_mark})",
            path=path,
            expected="plain YAML without aliases; the only python tag allowed is "
                     "!!python/tuple",
        ) from exc
    except DuplicateKeyError as exc:
        raise DatasetLayoutError(str(exc), path=path,
                                 expected="each entry once (the reader would otherwise "
                                          "keep only the last)") from exc
    except yaml.YAMLError as exc:
        raise DatasetLayoutError(f"invalid YAML: {exc}", path=path) from exc


def dump_yaml(data: Any) -> str:
    """Dump plain data deterministically (sorted keys off: keep the given order)."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: same bytes, ~4x faster
    out: str = yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, width=1000)
    return out
