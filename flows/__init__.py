"""Prefect 3 flows: ``extract`` (batches in, features out) and ``ingest``.

Deployments are declared in ``prefect.yaml``; ``docs/operations.md`` explains how to
run them. Importing this package does not import Prefect.
"""
