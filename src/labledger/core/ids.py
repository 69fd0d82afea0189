"""Identifiers and clocks: ULIDs and timezone-aware UTC time."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["is_ulid", "new_ulid", "utcnow"]

# python-ulid is imported where an id is made or checked, not with this module: importing it
# reads its own package metadata, which commands that make and check no id need not pay.


def new_ulid() -> str:
    """A new ULID as its 26-character string (time-ordered, collision-free across machines)."""
    from ulid import ULID

    return str(ULID())


def is_ulid(value: str) -> bool:
    """True when ``value`` is a valid 26-character ULID."""
    if len(value) != 26:
        return False
    from ulid import ULID

    try:
        ULID.from_str(value)
    except ValueError:
        return False
    return True


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)
