"""What a recorder run measured: metric series from ``$LABLEDGER_METRICS`` and results from the
files ``run.toml`` names.

A run's scripts append JSON lines to the file named by ``$LABLEDGER_METRICS``, each line one
point of one or more series: ``{"loss": 0.31, "accuracy": 0.8, "step": 120}`` (``step`` is
optional: a series then counts on from its last step). Lines that are not JSON objects, and
values that are not finite numbers, are counted and skipped, never fatal: a half-written last
line of a killed run costs that line only.

``run.toml`` may name result files (``results = ["outputs/metrics.json"]``): JSON or TOML
objects, nested ones flattened to dotted names (``{"val": {"acc": 0.9}}`` gives ``val.acc``),
or CSV (a header and one row, or two columns of name and value).
"""

from __future__ import annotations

import csv
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labledger.errors import ConfigError

__all__ = ["MetricFile", "flatten", "read_metrics_file", "read_result_file"]


@dataclass
class MetricFile:
    """The series of a metrics file: name -> ``[(step, value), ...]`` in the order written."""

    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    skipped: int = 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def read_metrics_file(path: Path) -> MetricFile:
    """Parse a JSON-lines metrics file (missing file: no series)."""
    out = MetricFile()
    if not path.is_file():
        return out
    next_step: dict[str, int] = {}
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except ValueError:
                out.skipped += 1
                continue
            if not isinstance(item, dict):
                out.skipped += 1
                continue
            step = item.get("step")
            if step is not None and (
                isinstance(step, bool) or not isinstance(step, int) or step < 0
            ):
                out.skipped += 1
                continue
            for name, raw in item.items():
                if name in ("step", "timestamp", "time"):
                    continue
                value = _number(raw)
                if value is None:
                    out.skipped += 1
                    continue
                at = next_step.get(name, 0) if step is None else step
                next_step[name] = max(next_step.get(name, 0), at + 1)
                out.series.setdefault(str(name), []).append((at, value))
    return out


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted names: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    if not isinstance(data, dict):
        return {prefix or "value": data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def _cell(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text else number


def read_result_file(path: Path, *, root: Path) -> dict[str, Any]:
    """The results in one file named by ``run.toml`` (relative to ``root``)."""
    where = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    if not path.is_file():
        raise ConfigError(
            f"results: {where} was not written by the run (run.toml names it as a result file)",
            field="results",
        )
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return flatten(json.loads(path.read_text(encoding="utf-8")))
        if suffix == ".toml":
            return flatten(tomllib.loads(path.read_text(encoding="utf-8")))
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                rows = [r for r in csv.reader(handle) if r]
            if len(rows) == 2 and len(rows[0]) == len(rows[1]):
                return {h.strip(): _cell(v.strip()) for h, v in zip(*rows, strict=True)}
            if rows and all(len(r) == 2 for r in rows):
                return {n.strip(): _cell(v.strip()) for n, v in rows}
            raise ValueError("expected a header and one row, or rows of name,value")
    except (ValueError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"results: cannot read {where}: {exc}", field="results") from exc
    raise ConfigError(f"results: {where} should end in .json, .toml or .csv", field="results")
