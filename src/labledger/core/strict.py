"""What every stored value must be: JSON that any client can read back, and text any database
keeps as it was given.

Refused anywhere in a request (names, ids, filters, parameters, results, milestone data):
NaN and ±Infinity (not JSON; ``1e400`` reads as Infinity), the NUL character (PostgreSQL cannot
store it in text) and lone surrogates such as ``"\\udc00"`` (not Unicode text; UTF-8 cannot
encode them). Checked at the edge, before anything is stored, so both backends refuse the same
input the same way.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["clean_for_json", "problem_in", "text_problem"]


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (None when it can)."""
    if value.isascii():
        return "contains the NUL character (\\u0000)" if "\x00" in value else None
    if "\x00" in value:
        return "contains the NUL character (\\u0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"contains a lone surrogate ({value[exc.start]!r}), which is not Unicode text"
    return None


def _number_problem(value: float) -> str | None:
    if math.isfinite(value):
        return None
    got = "NaN" if math.isnan(value) else ("-" if value < 0 else "") + "Infinity"
    return f"expected a finite number, got {got} (or a number past ±1.8e308), which is not JSON"


def problem_in(value: Any, path: str = "body") -> tuple[str, str] | None:
    """The first place in a parsed JSON value that cannot be stored: (field path, why)."""
    if isinstance(value, str):
        why = text_problem(value)
        return (path, why) if why else None
    if isinstance(value, float):
        why = _number_problem(value)
        return (path, why) if why else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = str(key) if path == "body" else f"{path}.{key}"
            if isinstance(key, str) and (why := text_problem(key)):
                return (path, f"a key {why}")
            if (found := problem_in(item, here)) is not None:
                return found
        return None
    if isinstance(value, list):
        for index, item in enumerate(value):
            here = str(index) if path == "body" else f"{path}.{index}"
            if (found := problem_in(item, here)) is not None:
                return found
    return None


def clean_for_json(value: Any) -> Any:
    """A copy that standard JSON can carry: non-finite numbers become null and lone surrogates
    U+FFFD. For rows stored before such values were refused (or imported): a list still
    answers, with the bad value shown as missing."""
    if isinstance(value, str):
        if value.isascii():
            return value
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {clean_for_json(k): clean_for_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_for_json(v) for v in value]
    return value
