"""Ids: ULIDs made by labledger are made by python-ulid and read back by it."""

from __future__ import annotations

import time

from ulid import ULID

from labledger.core.ids import is_ulid, new_ulid


def test_a_new_ulid_reads_back_with_python_ulid_at_the_time_it_was_made() -> None:
    before = time.time()
    made = new_ulid()
    after = time.time()
    parsed = ULID.from_str(made)
    assert str(parsed) == made and len(made) == 26 and is_ulid(made)
    assert before - 0.001 <= parsed.timestamp <= after + 0.001


def test_ulids_made_later_sort_later_and_never_repeat() -> None:
    first = [new_ulid() for _ in range(1000)]
    time.sleep(0.002)
    second = [new_ulid() for _ in range(1000)]
    assert max(first) < min(second)
    assert len(set(first + second)) == 2000
