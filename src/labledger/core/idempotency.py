"""Idempotency keys as data: the claim a keyed request carries, and the answer kept for it.

A POST that carries an ``Idempotency-Key`` runs with an :class:`IdempotencyClaim`. The use case
that creates a record hands the claim to the store, which writes the key *in the same
transaction* as the record, under a unique constraint: of two requests with one key only one
commits. The store fills in what was created (``resource_kind``, ``resource_id``), or sets
``lost`` when a twin committed first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["IdempotencyClaim", "StoredAnswer"]


@dataclass
class IdempotencyClaim:
    """A request that carries an Idempotency-Key, while it runs."""

    principal: str
    key: str
    method: str
    path: str
    fingerprint: str
    #: set by the store once the created record's transaction holds the key
    resource_kind: str | None = None
    resource_id: str | None = None
    #: set when another request with the same key created its record first
    lost: bool = False


@dataclass(frozen=True)
class StoredAnswer:
    """What is remembered of a request with an Idempotency-Key."""

    fingerprint: str
    method: str
    path: str
    resource_kind: str
    resource_id: str
    status_code: int | None
    response_body: str | None
    created_at: datetime
