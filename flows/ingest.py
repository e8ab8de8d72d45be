"""The ``ingest`` flow: merge new or re-delivered batches into the store's tables,
without extracting (``prefect deployment run ingest/ingest``)."""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow
from pydantic import Field

from flows.extract import ingest_new_batches
from flows.settings import source_and_store


@flow(name="ingest", description="Ingest new or changed consented batches into the tables.")
def ingest(source: str | None = None, store: str | None = None,
           consent: list[str] | None = None,
           settle_seconds: Annotated[float, Field(ge=0)] = 0.0) -> dict[str, Any]:
    """``source``: a release folder or an inbox of batch folders; ``store``: the store
    directory, or ``s3://bucket/prefix`` (defaults: ``$BAHFS_INBOX``, ``$BAHFS_STORE``, else
    ``data/inbox``, ``data/store``); ``consent``: consents required (default: challenges and
    publications)."""
    source, store = source_and_store(source, store)
    new, bad = ingest_new_batches(source, store, consent, settle_seconds)
    return {"batches": [b.name for b in new], "bad_batches": bad}
