"""The house's layers, read from the import graph (every import, lazy ones included).

    store/        the ground: errors, the extractor -> store contract, release reading,
                  tables, consent, layout, writer/reader, verify, stats
    extractors/   uses store
    training/     uses store only
    flows/        uses store and extractors
    bahfs/        the door: CLI, demo, sample generator; uses everything
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("store", "extractors", "training", "flows", "bahfs")
#: package -> the project packages it may import (itself included)
ALLOWED = {
    "store": {"store"},
    "extractors": {"store", "extractors"},
    "training": {"store", "training"},
    "flows": {"store", "extractors", "flows"},
    "bahfs": set(PACKAGES),
}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, relative imports resolved, lazy ones included."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


MODULES = _modules()
GRAPH = {m: {i for i in _imports(m, p) if i in MODULES and i != m} for m, p in MODULES.items()}


def test_nothing_imports_a_layer_above_it() -> None:
    upward = [f"{m} imports {i}" for m, deps in GRAPH.items() for i in deps
              if i.split(".")[0] not in ALLOWED[m.split(".")[0]]]
    assert upward == []


def test_no_import_cycles() -> None:
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for dep in sorted(GRAPH[m]):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep):], dep])
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])
    # a package's __init__ importing its own modules is no cycle unless they import it back
    assert cycles == []


def test_modules_stay_small() -> None:
    big = {m: n for m, p in MODULES.items()
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert big == {}


def _third_party(pkg: str) -> set[str]:
    """Top-level outside modules reachable from ``pkg`` through the project's imports."""
    seen, todo, outside = set(), [m for m in MODULES if m.split(".")[0] == pkg], set()
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        for i in _imports(m, MODULES[m]):
            if i in MODULES:
                todo.append(i)
            elif i.split(".")[0] not in PACKAGES:
                outside.add(i.split(".")[0])
    return outside


@pytest.mark.parametrize(("pkg", "banned"), [("store", {"onnxruntime", "torch"}),
                                             ("training", {"onnxruntime", "prefect"})])
def test_ground_never_reaches_model_runtimes(pkg: str, banned: set[str]) -> None:
    assert _third_party(pkg) & banned == set()


def test_importing_every_store_module_loads_no_model_runtime() -> None:
    names = sorted(m for m in MODULES if m.split(".")[0] == "store")
    code = ("import importlib, sys\n"
            f"for m in {names!r}: importlib.import_module(m)\n"
            "print(sorted(b for b in ('onnxruntime', 'torch') if b in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip()
    assert out == "[]"
