"""Consent: which participants may be in the store, and who withdrew.

Consent is law: a participant who did not give every consent the policy requires
is never ingested or extracted, and a withdrawal is remembered (as a SHA-256 of
the id, never the id) so that no later ingest brings them back.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from store.backend import Store
from store.errors import ConfigError
from store.local import as_store

CONSENTS = {"challenges": "consent_challenges", "publications": "consent_publications"}
#: the ``exclusions`` reason of a participant who withdrew
WITHDREW = "withdrew consent (purged)"


class ConsentPolicy(BaseModel):
    """Which consents a participant must have given to be ingested."""

    model_config = ConfigDict(frozen=True)

    require: tuple[str, ...] = ("challenges", "publications")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            msg = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"bad consent policy: {msg}",
                              expected=f"consents among {list(CONSENTS)}") from exc

    @field_validator("require")
    @classmethod
    def _known(cls, require: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [r for r in require if r not in CONSENTS]
        if unknown:
            raise ValueError(f"unknown consent {unknown}")
        return require


def subject_hash(participant_id: str) -> str:
    """The pseudonymous key kept in withdrawal and audit rows."""
    return hashlib.sha256(f"bahfs-subject:{participant_id}".encode()).hexdigest()


def withdrawn(store: Store | Path) -> set[str]:
    """Subject hashes of every participant who withdrew."""
    return set(as_store(store).read_table_or_empty("withdrawals")["subject_sha256"].to_list())


def consent_exclusions(participants: pl.DataFrame, policy: ConsentPolicy,
                       withdrawn_subjects: set[str] | frozenset[str] = frozenset()
                       ) -> pl.DataFrame:
    """Participants lacking a required consent or who withdrew, with the reason."""
    reasons = []
    for row in participants.iter_rows(named=True):
        missing = [c for c in policy.require if not row[CONSENTS[c]]]
        if subject_hash(row["participant_id"]) in withdrawn_subjects:
            reasons.append({"participant_id": row["participant_id"],
                            "reason": WITHDREW})
        elif missing:
            reasons.append({"participant_id": row["participant_id"],
                            "reason": "declined use in " + " and ".join(missing)})
    return pl.DataFrame(reasons, schema={"participant_id": pl.String, "reason": pl.String})
