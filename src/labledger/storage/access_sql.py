"""API tokens and idempotency keys in the database (revision 0003).

Tokens are kept as the SHA-256 of their secret (:mod:`labledger.core.access`); revoking one keeps
its row, so the name an event log entry points at stays explained.

Idempotency: a request that carries an ``Idempotency-Key`` runs inside :func:`claiming`. A store
method that creates a record calls :func:`record_created` *inside its write transaction*, which
inserts ``(principal, key) -> (kind, id)`` there. The pair is the primary key, so of two requests
with one key only one transaction can commit; the other rolls back whole (nothing created) and
raises :class:`DuplicateRequest` with ``claim.lost`` set, and the server answers it with the
first request's answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from labledger.core.access import ApiToken, Scope, check_token_name, hash_secret, new_secret
from labledger.core.ids import utcnow
from labledger.errors import (
    AlreadyExists,
    DuplicateRequest,
    InvalidInput,
    NotFound,
)
from labledger.storage.engine import read_transaction, write_transaction
from labledger.storage.tables import api_tokens, idempotency_keys

__all__ = [
    "IdempotencyClaim",
    "IdempotencyStore",
    "StoredAnswer",
    "TokenStore",
    "claiming",
    "current_claim",
    "record_created",
]

T = api_tokens.c
K = idempotency_keys.c


_write = write_transaction
_read = read_transaction


def _token(row: Any) -> ApiToken:
    return ApiToken(
        name=row.name,
        scope=Scope(row.scope),
        note=row.note,
        created_by=row.created_by,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class TokenStore:
    """Create, list, revoke and look up API tokens."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self,
        name: str,
        scope: Scope | str,
        *,
        note: str | None = None,
        created_by: str | None = None,
    ) -> tuple[ApiToken, str]:
        """Make a token; return it and its secret (which is stored only as a hash)."""
        try:
            check_token_name(name)
            scope = Scope(scope)
        except ValueError as exc:
            raise InvalidInput(str(exc), field="name" if "name" in str(exc) else "scope") from None
        secret = new_secret()
        row = {
            "name": name,
            "secret_hash": hash_secret(secret),
            "scope": scope.value,
            "note": note,
            "created_by": created_by,
            "created_at": utcnow(),
        }
        try:
            with _write(self.engine) as conn:
                conn.execute(insert(api_tokens), [row])
        except SAIntegrityError:
            raise AlreadyExists(
                f"A token named {name!r} exists already (revoked tokens keep their name for the "
                "event log); choose another name",
                token=name,
            ) from None
        return _token(_Row(row)), secret

    def list(self, *, include_revoked: bool = True) -> list[ApiToken]:
        """Every token, oldest first."""
        stmt = select(api_tokens).order_by(T.created_at, T.name)
        if not include_revoked:
            stmt = stmt.where(T.revoked_at.is_(None))
        with _read(self.engine) as conn:
            return [_token(r) for r in conn.execute(stmt)]

    def get(self, name: str) -> ApiToken:
        """One token by name, or NotFound."""
        with _read(self.engine) as conn:
            row = conn.execute(select(api_tokens).where(T.name == name)).first()
        if row is None:
            raise NotFound(f"No token named {name!r}; see `labledger token list`", token=name)
        return _token(row)

    def revoke(self, name: str) -> ApiToken:
        """Revoke a token at once (revoking a revoked token changes nothing)."""
        with _write(self.engine) as conn:
            conn.execute(
                update(api_tokens)
                .where(T.name == name, T.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return self.get(name)

    def active(self) -> dict[str, tuple[str, Scope]]:
        """Every active token: secret hash -> (name, scope)."""
        stmt = select(T.secret_hash, T.name, T.scope).where(T.revoked_at.is_(None))
        with _read(self.engine) as conn:
            return {r.secret_hash: (r.name, Scope(r.scope)) for r in conn.execute(stmt)}

    def touch(self, names: set[str], at: datetime) -> None:
        """Record that these tokens were used at ``at``."""
        if names:
            with _write(self.engine) as conn:
                conn.execute(update(api_tokens).where(T.name.in_(names)).values(last_used_at=at))


class _Row:
    """Attribute access over a dict, to build an ApiToken from the row just inserted."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.__dict__.update({"last_used_at": None, "revoked_at": None, **data})


# --------------------------------------------------------------------------- idempotency


@dataclass
class IdempotencyClaim:
    """A request that carries an Idempotency-Key, while it runs."""

    principal: str
    key: str
    method: str
    path: str
    fingerprint: str
    #: set by :func:`record_created` once the created record's transaction holds the key
    resource_kind: str | None = None
    resource_id: str | None = None
    #: set when another request with the same key created its record first
    lost: bool = False


_current: ContextVar[IdempotencyClaim | None] = ContextVar("labledger_idempotency", default=None)


@contextmanager
def claiming(claim: IdempotencyClaim) -> Iterator[IdempotencyClaim]:
    """Make ``claim`` the current request's claim for the duration of the block."""
    token = _current.set(claim)
    try:
        yield claim
    finally:
        _current.reset(token)


def current_claim() -> IdempotencyClaim | None:
    """The claim of the request being handled, if it carries an Idempotency-Key."""
    return _current.get()


def record_created(conn: Connection, kind: str, resource_id: str) -> None:
    """Tie the current request's Idempotency-Key (if any) to the record it creates.

    Call it inside the write transaction that inserts the record, after the insert. Raises
    :class:`DuplicateRequest` (the transaction then rolls back) when another request with the
    same key committed first.
    """
    claim = _current.get()
    if claim is None or claim.resource_id is not None:
        return
    row = {
        "principal": claim.principal,
        "key": claim.key,
        "method": claim.method,
        "path": claim.path[:1000],
        "fingerprint": claim.fingerprint,
        "resource_kind": kind,
        "resource_id": resource_id,
        "created_at": utcnow(),
    }
    try:
        # no savepoint: on a clash the whole transaction is rolled back anyway
        conn.execute(insert(idempotency_keys), [row])
    except SAIntegrityError:
        claim.lost = True
        raise DuplicateRequest(
            f"A request with Idempotency-Key {claim.key!r} created its record first",
            idempotency_key=claim.key,
        ) from None
    claim.resource_kind, claim.resource_id = kind, resource_id


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


class IdempotencyStore:
    """Look up and complete remembered answers; forget old ones."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def find(self, principal: str, key: str) -> StoredAnswer | None:
        """The remembered answer for this key, if the key was used."""
        stmt = select(idempotency_keys).where(K.principal == principal, K.key == key)
        with _read(self.engine) as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        return StoredAnswer(
            fingerprint=row.fingerprint,
            method=row.method,
            path=row.path,
            resource_kind=row.resource_kind,
            resource_id=row.resource_id,
            status_code=row.status_code,
            response_body=row.response_body,
            created_at=row.created_at,
        )

    def store_answer(self, principal: str, key: str, status_code: int, body: str) -> None:
        """Keep the answer that was sent, so a retry gets exactly the same."""
        self.store_answers([(principal, key, status_code, body)])

    def store_answers(self, answers: list[tuple[str, str, int, str]]) -> None:
        """Keep several answers (principal, key, status, body) in one transaction.

        An answer is written once: a key that has one keeps it.
        """
        if not answers:
            return
        with _write(self.engine) as conn:
            for principal, key, status_code, body in answers:
                conn.execute(
                    update(idempotency_keys)
                    .where(K.principal == principal, K.key == key, K.status_code.is_(None))
                    .values(status_code=status_code, response_body=body)
                )

    def forget(self, principal: str, key: str) -> None:
        """Drop one remembered key (it outlived ``idempotency_hours``)."""
        with _write(self.engine) as conn:
            conn.execute(delete(idempotency_keys).where(K.principal == principal, K.key == key))

    def forget_before(self, before: datetime) -> int:
        """Drop keys remembered since before ``before``; return how many."""
        with _write(self.engine) as conn:
            result = conn.execute(delete(idempotency_keys).where(K.created_at < before))
        return int(result.rowcount or 0)
