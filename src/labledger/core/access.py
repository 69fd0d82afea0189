"""Access control as data: token scopes, what each allows, and how secrets are kept.

A token is a random secret shown once when it is made; only its SHA-256 digest is stored.
(A fast hash is right here: the secret has 256 bits of entropy, so there is nothing to
brute-force, unlike a password.) Scopes are ordered: ``admin`` includes ``write``, which
includes ``read``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

__all__ = [
    "SECRET_PREFIX",
    "TOKEN_NAME_PATTERN",
    "ApiToken",
    "Scope",
    "check_token_name",
    "hash_secret",
    "new_secret",
]

#: every secret starts with this, so a leaked one is easy to recognise (and to scan for)
SECRET_PREFIX = "lbl_"
#: token names: letters, digits, ``.``, ``_`` and ``-``; they appear in the event log
TOKEN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_NAME = re.compile(TOKEN_NAME_PATTERN)


class Scope(StrEnum):
    """What a token may do."""

    READ = "read"  # GET routes: look, never change
    WRITE = "write"  # also create and change experiments, campaigns and results
    ADMIN = "admin"  # also purge the trash and manage tokens

    @property
    def rank(self) -> int:
        """Position in the order read < write < admin."""
        return _RANK[self]

    def allows(self, needed: Scope) -> bool:
        """True when a token of this scope may do what ``needed`` asks."""
        return self.rank >= needed.rank


_RANK = {Scope.READ: 0, Scope.WRITE: 1, Scope.ADMIN: 2}


class ApiToken(BaseModel):
    """A stored token, without its secret."""

    name: str
    scope: Scope
    created_at: datetime
    created_by: str | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    note: str | None = Field(default=None, max_length=1000)

    @property
    def active(self) -> bool:
        """True until the token is revoked."""
        return self.revoked_at is None


def new_secret() -> str:
    """A fresh secret: the prefix and 256 random bits, URL-safe."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The hex SHA-256 digest under which a secret is stored and looked up."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_token_name(name: str) -> str:
    """Return ``name`` if it is a valid token name, else raise ValueError saying what is allowed."""
    if not _NAME.match(name):
        raise ValueError(
            f"token name {name!r}: expected 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name
