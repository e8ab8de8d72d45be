"""The bahfs store, the ground every other package stands on.

Errors (one root), the typed extractor -> store contract (:mod:`store.features`),
ffprobe (:mod:`store.media`), reading a BAH release in any variant
(:mod:`store.release`), consent, the Parquet tables (ingest, stats, purge) and the
Zarr features (layout, writer, reader, verify, catalog, export) under one
directory. Nothing here imports extractors, flows, training or the CLI, and the
package never imports onnxruntime or torch (``tests/test_layers.py``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("bahfs")
except PackageNotFoundError:  # a checkout that was never installed
    __version__ = "0+unknown"
