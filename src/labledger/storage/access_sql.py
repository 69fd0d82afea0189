"""API tokens in the SQL database.

Tokens are kept as the SHA-256 of their secret (:mod:`labledger.core.access`); revoking one keeps
its row, so the name an event log entry points at stays explained.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from labledger.core.access import ApiToken, Scope, check_token_name, hash_secret, new_secret
from labledger.core.ids import utcnow
from labledger.errors import AlreadyExists, InvalidInput, NotFound
from labledger.storage.engine import read_transaction, write_transaction
from labledger.storage.rows import row_to_token
from labledger.storage.tables import api_tokens

__all__ = ["TokenStore"]

T = api_tokens.c


class TokenStore:
    """The :class:`~labledger.core.store.Tokens` repository: create, list, revoke, look up."""

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
            with write_transaction(self.engine) as conn:
                conn.execute(insert(api_tokens), [row])
        except SAIntegrityError:
            raise AlreadyExists(
                f"A token named {name!r} exists already (revoked tokens keep their name for the "
                "event log); choose another name",
                token=name,
            ) from None
        return row_to_token(row), secret

    def list(self, *, include_revoked: bool = True) -> list[ApiToken]:
        """Every token, oldest first."""
        stmt = select(api_tokens).order_by(T.created_at, T.name)
        if not include_revoked:
            stmt = stmt.where(T.revoked_at.is_(None))
        with read_transaction(self.engine) as conn:
            return [row_to_token(r) for r in conn.execute(stmt)]

    def get(self, name: str) -> ApiToken:
        """One token by name, or NotFound."""
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(api_tokens).where(T.name == name)).first()
        if row is None:
            raise NotFound(f"No token named {name!r}; see `labledger token list`", token=name)
        return row_to_token(row)

    def revoke(self, name: str) -> ApiToken:
        """Revoke a token at once (revoking a revoked token changes nothing)."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(api_tokens)
                .where(T.name == name, T.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return self.get(name)

    def active(self) -> dict[str, tuple[str, Scope]]:
        """Every active token: secret hash -> (name, scope)."""
        stmt = select(T.secret_hash, T.name, T.scope).where(T.revoked_at.is_(None))
        with read_transaction(self.engine) as conn:
            return {r.secret_hash: (r.name, Scope(r.scope)) for r in conn.execute(stmt)}

    def touch(self, names: set[str], at: datetime) -> None:
        """Record that these tokens were used at ``at``."""
        if names:
            with write_transaction(self.engine) as conn:
                conn.execute(update(api_tokens).where(T.name.in_(names)).values(last_used_at=at))
