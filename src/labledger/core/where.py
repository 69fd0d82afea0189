"""Filter and sort expressions over experiments' results, metrics and parameters.

The syntax is the recorder's ``--where``: ``FIELD OP VALUE`` with OP one of
``= != > >= < <= ~`` (``~``: contains), where FIELD names what is compared:

``results.<name>``
    the value of a result
``metrics.<name>``
    the last value of a metric series
``parameters.<name>``
    an experiment parameter

``>``, ``>=``, ``<`` and ``<=`` compare numbers; ``=`` and ``!=`` compare numbers when VALUE is
one, else text (``true``/``false`` match booleans); ``~`` looks for text. A sort key is a FIELD,
prefixed with ``-`` for descending; experiments without the field sort last either way.
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from labledger.errors import InvalidInput

__all__ = [
    "NAMESPACES",
    "FieldFilter",
    "FieldSort",
    "parse_field",
    "parse_field_sort",
    "parse_where",
]

Namespace = Literal["results", "metrics", "parameters"]
NAMESPACES: tuple[Namespace, ...] = ("results", "metrics", "parameters")
OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "~")

_FIELD = r"(results|metrics|parameters)\.([A-Za-z0-9_][A-Za-z0-9_.\-]{0,199})"
_EXPR = re.compile(rf"\s*{_FIELD}\s*(==|!=|>=|<=|=|>|<|~)\s*(.*?)\s*\Z", re.S)
_SORT = re.compile(rf"(-?){_FIELD}\Z")

_EXPECTED = (
    "expected FIELD OP VALUE, FIELD one of results.<name>, metrics.<name>, parameters.<name> "
    "and OP one of = != > >= < <= ~ (for example metrics.loss<0.1)"
)


class FieldFilter(BaseModel):
    """One parsed ``where`` expression."""

    model_config = ConfigDict(frozen=True)

    namespace: Namespace
    name: str
    op: Literal["=", "!=", ">", ">=", "<", "<=", "~"]
    text: str
    #: VALUE as a number when it is one; the comparison is then numeric
    number: float | None = None


class FieldSort(BaseModel):
    """A parsed sort key over a field."""

    model_config = ConfigDict(frozen=True)

    namespace: Namespace
    name: str
    descending: bool


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_where(expression: str, *, field: str = "where") -> FieldFilter:
    """Parse one expression such as ``metrics.loss<0.1``; 422 saying what was expected."""
    match = _EXPR.match(expression)
    if not match:
        raise InvalidInput(f"{field}: {_EXPECTED}, got {expression!r}", field=field)
    namespace, name, op, raw = match.groups()
    text = raw.strip("'\"")
    if op == "==":
        op = "="
    number = _number(text) if op != "~" else None
    if op in (">", ">=", "<", "<=") and number is None:
        raise InvalidInput(
            f"{field}: {op} compares numbers, got {text!r} in {expression!r}; "
            "compare text with = != or ~ (contains)",
            field=field,
        )
    if not text and op != "=" and op != "!=":
        raise InvalidInput(f"{field}: {_EXPECTED}, got {expression!r}", field=field)
    return FieldFilter(namespace=namespace, name=name, op=op, text=text, number=number)


def parse_field(text: str) -> tuple[Namespace, str] | None:
    """``(namespace, name)`` of ``results.<name>`` and the like, or None for anything else."""
    match = re.fullmatch(_FIELD, text)
    if not match:
        return None
    namespace, name = match.groups()
    return namespace, name  # type: ignore[return-value]


def parse_field_sort(key: str) -> FieldSort | None:
    """A sort key over a field (``-results.accuracy``), or None when ``key`` is not one."""
    match = _SORT.match(key)
    if not match:
        return None
    minus, namespace, name = match.groups()
    return FieldSort(namespace=namespace, name=name, descending=bool(minus))
