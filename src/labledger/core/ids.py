"""Identifiers and clocks: ULIDs and timezone-aware UTC time."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["is_ulid", "new_ulid", "utcnow"]


def new_ulid() -> str:
    """A new ULID as its 26-character string (time-ordered, collision-free across machines)."""
    # Imported on first use: python-ulid reads its own package metadata when imported, which
    # the recorder's commands that make no id (`run`, `end`) need not pay for.
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
