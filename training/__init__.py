"""Training on the store: torch windows read from the store (never the video),
samplers, baselines (MLP, TCN, fusion; the transcript baseline), the official BAH
metrics and the reports beside them, runs, challenge submissions (predict), the
personalisation and zero-shot LLM protocols.

This package reads through :mod:`store` only; it never imports the extractors, the
flows or the CLI.
"""
