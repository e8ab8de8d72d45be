"""The store object owns the layout: outside the backend, no module reaches the
features hierarchy by path, so none can list its feature sets, participants or
videos from folders (they ask :class:`store.backend.Store`)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("store", "extractors", "flows", "training", "bahfs")
#: the names that lead into the hierarchy (store.layout spells them)
HIERARCHY = {"features_root", "video_dir", "FEATURES", "published_videos"}
#: where they may be used: the spelling, the store markers, the backends (local, S3)
OWNERS = {"store/layout.py", "store/location.py", "store/local.py", "store/s3.py"}


def _users() -> set[str]:
    found = set()
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = {a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                     and node.module == "store.layout" for a in node.names}
            if names & HIERARCHY:
                found.add(path.relative_to(ROOT).as_posix())
    return found


def test_only_the_backend_reaches_the_features_hierarchy() -> None:
    assert _users() - OWNERS == set()
    assert {"store/local.py", "store/s3.py"} <= _users()  # the check sees those that do
