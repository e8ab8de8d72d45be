"""Benchmarks: run as modules, e.g. `.venv/bin/python -m benchmarks.store`."""
