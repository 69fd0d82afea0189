"""Identifiers and clocks: ULIDs and timezone-aware UTC time."""

from __future__ import annotations

from datetime import UTC, datetime

from ulid import ULID

__all__ = ["is_ulid", "new_ulid", "utcnow"]


def new_ulid() -> str:
    """A new ULID as its 26-character string (time-ordered, collision-free across machines)."""
    return str(ULID())


def is_ulid(value: str) -> bool:
    """True when ``value`` is a valid 26-character ULID."""
    if len(value) != 26:
        return False
    try:
        ULID.from_str(value)
    except ValueError:
        return False
    return True


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)
