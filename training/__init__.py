"""Training on the store: torch windows read from the store (never the video),
samplers, baselines (MLP, TCN, fusion), the official BAH metrics, runs.

This package reads through :mod:`store` only; it never imports the extractors, the
flows or the CLI.
"""
