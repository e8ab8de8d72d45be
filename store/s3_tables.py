"""The Parquet tables and the ingest manifest of a store in an S3 bucket, under the
same keys as in a folder (``tables/<name>.parquet``, ``tables/manifest.json``): the
table half of :class:`store.s3.S3Store`. A table is replaced by one PUT, which S3
makes visible whole; its version is the object's ETag and time."""

from __future__ import annotations

import json
from collections.abc import Hashable
from io import BytesIO
from typing import Any

import polars as pl

from store.errors import CorruptError, NotFoundError
from store.s3_objects import Bucket
from store.schema import conform
from store.tables import MANIFEST, TABLES_DIR, with_schema


class S3Tables:
    """The table methods of the :class:`store.backend.Store` interface over ``bucket``."""

    bucket: Bucket

    @staticmethod
    def _table_key(name: str) -> str:
        return f"{TABLES_DIR}/{name}.parquet"

    def _table_bytes(self, name: str) -> bytes:
        try:
            return self.bucket.get(self._table_key(name))
        except NotFoundError as exc:
            raise NotFoundError(f"table {name!r} is missing; run `bahfs ingest` first",
                                path=f"{self.bucket.address}/{self._table_key(name)}",
                                expected=f"{TABLES_DIR}/{name}.parquet") from exc

    def read_table(self, name: str) -> pl.DataFrame:
        return with_schema(name, pl.read_parquet(BytesIO(self._table_bytes(name))))

    def write_table(self, name: str, df: pl.DataFrame) -> None:
        buf = BytesIO()
        conform(name, df).write_parquet(buf, compression="zstd", statistics=True)
        self.bucket.put(self._table_key(name), buf.getvalue())  # a PUT is atomic

    def table_exists(self, name: str) -> bool:
        return self.bucket.exists(self._table_key(name))

    def table_version(self, name: str) -> Hashable | None:
        head = self.bucket.head(self._table_key(name))
        return None if head is None else (head["etag"], head["modified"])

    def read_columns(self, name: str, columns: list[str]) -> dict[str, list[Any]]:
        import pyarrow as pa
        import pyarrow.parquet as pq  # pyarrow, not polars: no thread pool (fork-safe)

        t = pq.read_table(pa.BufferReader(self._table_bytes(name)), columns=columns,
                          use_threads=False)
        return {c: t.column(c).to_pylist() for c in columns}

    def read_manifest(self) -> dict[str, Any]:
        key = f"{TABLES_DIR}/{MANIFEST}"
        try:
            data: dict[str, Any] = json.loads(self.bucket.get(key))
        except NotFoundError as exc:
            raise NotFoundError("store has no ingest manifest; run `bahfs ingest` first",
                                path=f"{self.bucket.address}/{key}") from exc
        except ValueError as exc:
            raise CorruptError(f"unreadable ingest manifest: {exc}", path=key) from exc
        return data

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        text = json.dumps(manifest, indent=2, sort_keys=True)
        self.bucket.put(f"{TABLES_DIR}/{MANIFEST}", text.encode())

    def scan_table(self, name: str) -> pl.LazyFrame:
        return pl.read_parquet(BytesIO(self._table_bytes(name))).lazy()
