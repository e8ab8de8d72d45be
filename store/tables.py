"""Parquet tables of the store: atomic writes, schema-checked reads."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Any

import polars as pl

from store.access import load_policy
from store.errors import NotFoundError
from store.layout import atomic_write, atomic_write_text
from store.schema import conform, empty, schema

TABLES_DIR = "tables"
MANIFEST = "_manifest.json"


def tables_dir(store: Path) -> Path:
    return Path(store) / TABLES_DIR


def _file(store: Path, name: str) -> Path:
    return tables_dir(store) / f"{name}.parquet"


def utc_now() -> str:
    """The timestamp format of every table and attribute: UTC, ISO 8601, seconds."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


_OS_ERROR = re.compile(r"\(os error (\d+)\)")


def _write_parquet(df: pl.DataFrame, tmp: str) -> None:
    """``df.write_parquet``; polars reports a failing write (a full disk) as its own
    ``ComputeError`` carrying the OS error only in its text (``(os error 28)``): that
    is raised as the ``OSError`` it is, so that it is classified as the machine's."""
    try:
        df.write_parquet(tmp, compression="zstd", statistics=True)
    except pl.exceptions.PolarsError as exc:
        found = _OS_ERROR.search(str(exc))
        if found is None:
            raise
        code = int(found[1])
        raise OSError(code, os.strerror(code), tmp) from exc


def write_table(store: Path, name: str, df: pl.DataFrame) -> Path:
    """Conform ``df`` to the declared schema of ``name`` and publish it atomically."""
    df = conform(name, df)
    path = _file(store, name)
    atomic_write(path, lambda tmp: _write_parquet(df, tmp), access=load_policy(store))
    return path


def table_exists(store: Path, name: str) -> bool:
    return _file(store, name).is_file()


def table_path(store: Path, name: str) -> Path:
    """The Parquet file of table ``name``; a clear error when it is missing."""
    path = _file(store, name)
    if not path.is_file():
        raise NotFoundError(f"table {name!r} is missing; run `bahfs ingest` first", path=path,
                            expected=f"{TABLES_DIR}/{name}.parquet")
    return path


def read_table(store: Path, name: str) -> pl.DataFrame:
    """Read table ``name`` with its declared schema; clear error when missing. A
    column declared after the table was written (a store of an older bahfs) reads
    as nulls."""
    return with_schema(name, pl.read_parquet(table_path(store, name)))


def with_schema(name: str, df: pl.DataFrame) -> pl.DataFrame:
    """``df`` as read from table ``name``'s file, given its declared schema: a column
    declared after the table was written reads as nulls."""
    declared = schema(name)
    absent = [c for c in declared.names() if c not in df.columns]
    if absent and df.width:
        df = df.with_columns(pl.lit(None, dtype=declared[c]).alias(c) for c in absent)
    return df.cast(dict(declared.items()), strict=True)


def read_table_or_empty(store: Path, name: str) -> pl.DataFrame:
    """Like :func:`read_table`, but an empty frame when the table was never written."""
    if not table_exists(store, name):
        return empty(name)
    return read_table(store, name)


def scan_table(store: Path, name: str) -> pl.LazyFrame:
    """Lazy scan of table ``name`` (for large tables such as frame_labels)."""
    return pl.scan_parquet(table_path(store, name))


def write_manifest(store: Path, manifest: dict[str, Any]) -> None:
    path = tables_dir(store) / MANIFEST
    text = json.dumps(manifest, indent=2, sort_keys=True)
    atomic_write_text(path, text, access=load_policy(store))


def read_manifest(store: Path) -> dict[str, Any]:
    path = tables_dir(store) / MANIFEST
    if not path.is_file():
        raise NotFoundError("store has no ingest manifest; run `bahfs ingest` first", path=path)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
