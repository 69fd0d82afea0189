"""Ids: ULIDs made by labledger are the ones python-ulid makes and reads."""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ulid import ULID

from labledger.core import ids
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


@given(
    millis=st.integers(min_value=0, max_value=2**48 - 1),
    randomness=st.binary(min_size=10, max_size=10),
)
def test_the_time_and_randomness_are_encoded_as_python_ulid_does(
    millis: int, randomness: bytes
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time_ns", lambda: millis * 1_000_000 + 999_999)
        patch.setattr(os, "urandom", lambda n: randomness[:n])
        made = ids.new_ulid()
    assert made == str(ULID.from_bytes(millis.to_bytes(6, "big") + randomness))
