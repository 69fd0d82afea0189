"""The Jinja2 environment of the UI: autoescaping, filters for times, values and statuses."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from labledger.core.strict import clean_for_json, text_problem
from labledger.server.ui import TEMPLATE_DIR
from labledger.server.ui.views import value_text

__all__ = ["templates"]


def _when(value: datetime | str | None) -> str:
    """A UTC time to the second, as people read it."""
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        return _when(parsed)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _short_time(value: datetime | None) -> Markup:
    """A compact UTC time for tables (to the minute), with the exact time in its title."""
    if value is None:
        return Markup("—")
    exact = value.astimezone(UTC)
    return Markup('<time datetime="{0}" title="{1} UTC">{2}</time>').format(
        exact.isoformat(), exact.strftime("%Y-%m-%d %H:%M:%S"), exact.strftime("%Y-%m-%d %H:%M")
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


def _pretty(value: Any) -> str:
    if isinstance(value, list) and not any(isinstance(v, dict | list) for v in value):
        return json.dumps(value, ensure_ascii=False)  # a series of numbers stays on one line
    if isinstance(value, dict | list):
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    return value_text(value)


def _status(value: str) -> Markup:
    label = value.replace("_", " ")
    return Markup('<span class="badge status-{0}" data-status="{0}">{1}</span>').format(
        value, label
    )


def _num(value: Any) -> str:
    """A table cell: floats to four significant digits, anything else as :func:`value_text`."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return value_text(value)


def _tojson_attr(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _finalize(value: Any) -> Any:
    """Every ``{{ }}`` output: a lone surrogate (in a row stored before such values were
    refused) shows as U+FFFD instead of making the page unencodable."""
    if isinstance(value, str) and not value.isascii() and text_problem(value) is not None:
        cleaned = clean_for_json(value)
        return Markup(cleaned) if isinstance(value, Markup) else cleaned
    return value


templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
templates.env.finalize = _finalize
templates.env.filters.update(
    when=_when,
    short_time=_short_time,
    duration=_duration,
    pretty=_pretty,
    text=value_text,
    num=_num,
    status=_status,
    jsonattr=_tojson_attr,
)
