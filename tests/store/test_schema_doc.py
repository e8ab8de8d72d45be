"""docs/tables.md documents exactly the declared schemas."""

from __future__ import annotations

import re
from pathlib import Path

from store.schema import TABLES

DOC = Path(__file__).resolve().parents[2] / "docs" / "tables.md"


def test_doc_lists_every_declared_column_with_its_type() -> None:
    documented: dict[str, dict[str, str]] = {}
    table = None
    for line in DOC.read_text().splitlines():
        if line.startswith("## ") and not line.startswith("## Tables"):
            table = line[3:].strip()
            documented[table] = {}
        m = re.match(r"^\| (\w+) \| (\w+) \|", line)
        if table and m and m[1] != "column":
            documented[table][m[1]] = m[2]
    declared = {t: {c: str(dt).split("(")[0] for c, dt in cols.items()}
                for t, cols in TABLES.items()}
    assert documented == declared
