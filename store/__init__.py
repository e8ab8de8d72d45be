"""The bahfs store: Parquet tables (and, later, Zarr features) under one directory.

This package never imports onnxruntime or torch.
"""
