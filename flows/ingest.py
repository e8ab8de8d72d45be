"""The ``ingest`` flow: merge new or re-delivered batches into the store's tables,
without extracting (``prefect deployment run ingest/ingest``)."""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow
from pydantic import Field

from flows.extract import ingest_new_batches


@flow(name="ingest", description="Ingest new or changed consented batches into the tables.")
def ingest(source: str = "data/inbox", store: str = "data/store",
           consent: list[str] | None = None,
           settle_seconds: Annotated[float, Field(ge=0)] = 0.0) -> dict[str, Any]:
    """``source``: a release folder or an inbox of batch folders; ``store``: the store
    directory; ``consent``: consents required (default: challenges and publications)."""
    new = ingest_new_batches(source, store, list(consent or ()) or ["challenges",
                                                                    "publications"],
                             settle_seconds)
    return {"batches": [b.name for b in new]}
