"""Identifiers and clocks: ULIDs and timezone-aware UTC time."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

__all__ = ["is_ulid", "new_ulid", "utcnow"]


#: Crockford's base 32, the ULID spec's alphabet
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid() -> str:
    """A new ULID as its 26-character string (time-ordered, collision-free across machines).

    Made as python-ulid's ``str(ULID())`` makes it: the Unix time in milliseconds (48 bits),
    then 80 random bits, in Crockford's base 32. Encoded here because importing python-ulid
    reads its own package metadata (about 10 ms, a tenth of a `labledger new`); it is still
    what parses and checks ids (:func:`is_ulid`).
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -5, -5))


def is_ulid(value: str) -> bool:
    """True when ``value`` is a valid 26-character ULID."""
    if len(value) != 26:
        return False
    from ulid import ULID  # on first use: see new_ulid

    try:
        ULID.from_str(value)
    except ValueError:
        return False
    return True


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)
