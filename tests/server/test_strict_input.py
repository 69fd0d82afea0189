"""The strict-input middleware's cheap scan: it flags a body exactly when one of the patterns
that can hide an unstorable value occurs in it (so no body skips the strict parse wrongly)."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from labledger.server.strict_input import _may_hold_a_problem

#: the patterns the scan stands for, as regular expressions
PATTERNS = [
    re.compile(rb"\\u0000|\\u[dD][89a-fA-F]|NaN|Infinity"),
    re.compile(rb"[eE]\+?[0-9]{3}"),
    re.compile(rb"[0-9]{300}"),
]

#: bytes that make up the patterns, and some that do not
ALPHABET = b'0123456789eE+-.\\u0dD89aAfFNInity"{}:, x\x00\xff'


def _by_regex(raw: bytes) -> bool:
    return any(pattern.search(raw) is not None for pattern in PATTERNS)


@given(st.lists(st.sampled_from(list(ALPHABET)), max_size=400).map(bytes))
def test_the_scan_flags_exactly_what_the_patterns_match(raw: bytes) -> None:
    assert _may_hold_a_problem(raw) == _by_regex(raw)


@given(st.integers(0, 400), st.integers(0, 3), st.sampled_from([b"e", b"E", b"e+", b"E+"]))
def test_long_digit_runs_and_large_exponents_are_flagged(
    digits: int, exponent: int, marker: bytes
) -> None:
    run = b'{"v": ' + b"7" * digits + b"}"
    assert _may_hold_a_problem(run) == (digits >= 300)
    number = b'{"v": 1' + marker + b"9" * exponent + b"}"
    assert _may_hold_a_problem(number) == (exponent >= 3)


def test_an_ordinary_metrics_batch_is_not_flagged() -> None:
    batch = {"metrics": [{"name": "loss", "value": 1 / (i + 1), "step": i} for i in range(2000)]}
    raw = json.dumps(batch).encode()
    assert not _may_hold_a_problem(raw) and not _by_regex(raw)
    for bad in (b"NaN", b"-Infinity", b"\\u0000", b"\\uD800", b"1e999", b"1E+308"):
        assert _may_hold_a_problem(raw[:-2] + b', "x": ' + bad + b"}]}")
