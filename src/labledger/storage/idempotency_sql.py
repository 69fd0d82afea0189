"""Idempotency keys in the SQL database.

A write that creates a record calls :func:`record_key` *inside its write transaction*, after the
insert, with the request's claim. That inserts ``(principal, key) -> (kind, id)``; the pair is
the primary key, so of two requests with one key only one transaction can commit. The other
rolls back whole (nothing created) and raises :class:`DuplicateRequest` with ``claim.lost`` set,
and the server answers it with the first request's answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from labledger.core.idempotency import IdempotencyClaim, StoredAnswer
from labledger.core.ids import utcnow
from labledger.errors import DuplicateRequest
from labledger.storage.engine import read_transaction, write_transaction
from labledger.storage.rows import row_to_answer
from labledger.storage.tables import idempotency_keys

__all__ = ["IdempotencyStore", "key_row", "record_key"]

K = idempotency_keys.c


def key_row(claim: IdempotencyClaim, kind: str, resource_id: str) -> dict[str, Any]:
    """The ``idempotency_keys`` row tying ``claim``'s key to the record ``resource_id``."""
    return {
        "principal": claim.principal,
        "key": claim.key,
        "method": claim.method,
        "path": claim.path[:1000],
        "fingerprint": claim.fingerprint,
        "resource_kind": kind,
        "resource_id": resource_id,
        "created_at": utcnow(),
    }


def record_key(
    conn: Connection, claim: IdempotencyClaim | None, kind: str, resource_id: str
) -> None:
    """Tie ``claim``'s Idempotency-Key (if any) to the record this transaction creates.

    Raises :class:`DuplicateRequest` (the transaction then rolls back) when another request
    with the same key committed first. A claim already tied to a record is left as it is.
    """
    if claim is None or claim.resource_id is not None:
        return
    try:
        # no savepoint: on a clash the whole transaction is rolled back anyway
        conn.execute(insert(idempotency_keys), [key_row(claim, kind, resource_id)])
    except SAIntegrityError:
        claim.lost = True
        raise DuplicateRequest(
            f"A request with Idempotency-Key {claim.key!r} created its record first",
            idempotency_key=claim.key,
        ) from None
    claim.resource_kind, claim.resource_id = kind, resource_id


class IdempotencyStore:
    """The :class:`~labledger.core.store.IdempotencyKeys` repository."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def find(self, principal: str, key: str) -> StoredAnswer | None:
        stmt = select(idempotency_keys).where(K.principal == principal, K.key == key)
        with read_transaction(self.engine) as conn:
            row = conn.execute(stmt).first()
        return None if row is None else row_to_answer(row)

    def store_answers(self, answers: list[tuple[str, str, int, str]]) -> None:
        if not answers:
            return
        with write_transaction(self.engine) as conn:
            for principal, key, status_code, body in answers:
                conn.execute(
                    update(idempotency_keys)
                    .where(K.principal == principal, K.key == key, K.status_code.is_(None))
                    .values(status_code=status_code, response_body=body)
                )

    def forget(self, principal: str, key: str) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(delete(idempotency_keys).where(K.principal == principal, K.key == key))

    def forget_before(self, before: datetime) -> int:
        with write_transaction(self.engine) as conn:
            result = conn.execute(delete(idempotency_keys).where(K.created_at < before))
        return int(result.rowcount or 0)
