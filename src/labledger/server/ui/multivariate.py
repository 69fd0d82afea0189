"""Server-rendered SVG for many runs at once: parallel coordinates and a grouped scatter.

As :mod:`.charts`: ``role="img"``, ``<title>``, a ``<desc>`` that states what is drawn in words,
axes with round tick values, a ``<title>`` on every mark, and legends in text, so colour is
never the only channel. Numbers are printed rounded for reading (4 significant digits).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from labledger.server.ui.charts import _fmt, _Frame, _Scale, curve_color, legend, nice_ticks

__all__ = ["Dot", "choose_axes", "group_scatter", "parallel_chart", "plottable", "scatter_of"]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _show(value: Any) -> str:
    number = _number(value)
    return _fmt(float(f"{number:.4g}")) if number is not None else str(value)


def plottable(values: Sequence[Any]) -> bool:
    """True when a column has a value for at least one run (numbers or categories)."""
    return any(v is not None for v in values)


class _Axis:
    """One vertical axis: numeric (nice ticks) or categorical (its values in first-seen order)."""

    def __init__(self, name: str, values: Sequence[Any], top: float, bottom: float) -> None:
        self.name = name
        present = [v for v in values if v is not None]
        numbers = [_number(v) for v in present]
        self.numeric = bool(present) and all(n is not None for n in numbers)
        self.categories: list[str] = []
        self.ticks: list[float] = []
        if self.numeric:
            nums = [n for n in numbers if n is not None]
            self.ticks = nice_ticks(min(nums), max(nums), target=4)
        else:
            self.categories = list(dict.fromkeys(str(v) for v in present))
        self.place(top, bottom)

    def place(self, top: float, bottom: float) -> None:
        """Map the axis' values between pixel rows ``bottom`` (lowest) and ``top``."""
        if self.numeric:
            self.scale = _Scale(self.ticks[0], self.ticks[-1], bottom, top)
        else:
            n = max(len(self.categories), 1)
            self.scale = _Scale(-0.5, n - 0.5, bottom, top)

    def y(self, value: Any) -> float | None:
        if value is None:
            return None
        if self.numeric:
            number = _number(value)
            return None if number is None else self.scale(number)
        return self.scale(float(self.categories.index(str(value))))

    def labels(self) -> list[tuple[float, str]]:
        if self.numeric:
            return [(self.scale(t), _fmt(t)) for t in self.ticks]
        return [(self.scale(float(i)), c) for i, c in enumerate(self.categories)]


def _text_width(text: str) -> float:
    """A generous estimate of ``text``'s width in px at the charts' 12 px sans-serif (wide
    glyphs such as 'm' and 'w' average under 0.65 em; digits and most letters less)."""
    return 0.65 * 12 * len(text)


#: the longest axis name printed whole (a longer one is cut, whole in its tooltip)
_AXIS_NAME = 40


def _shown_name(name: str) -> str:
    return name if len(name) <= _AXIS_NAME else name[: _AXIS_NAME - 1] + "…"


def _whole(name: str, shown: str) -> str:
    """A tooltip with the whole name when it was cut for printing."""
    return "" if name == shown else f"<title>{escape(name)}</title>"


def _parallel_desc(axes: Sequence[str], runs: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    return (
        f"Parallel coordinates of {len(runs)} runs over {len(axes)} axes: "
        + "; ".join(
            f"{a} from {_show(min(vs))} to {_show(max(vs))}"
            if (vs := [v for _, row in runs if (v := _number(row.get(a))) is not None])
            else f"{a} (categories)"
            for a in axes
        )
        + "."
    )


def parallel_chart(
    title: str,
    axes: Sequence[str],
    runs: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    width: int = 820,
    height: int = 340,
) -> str:
    """One polyline per run across one vertical axis per field (a run lacking a field breaks
    its line there). Runs are coloured as on the curve charts, and named in a legend."""
    legend_rows = (len(runs) + 3) // 4
    if len(axes) < 2 or not runs:
        frame = _Frame(width, height, left=40, bottom=46)
        out = frame.open(title, _parallel_desc(axes, runs), "parallel-chart")
        out.append(
            f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" '
            f'fill="#555">Choose at least two fields that the runs have</text>'
        )
        return "".join([*out, "</svg>"])
    built = [_Axis(a, [row.get(a) for _, row in runs], 0.0, 1.0) for a in axes]
    # room for the outer axes' names (centred under them) and the last axis' ticks (beside
    # it, on its left), so no label leaves the picture
    names = [_shown_name(a) for a in axes]
    left = max(40.0, _text_width(names[0]) / 2 + 6)
    right = max(40.0, _text_width(names[-1]) / 2 + 6)
    step = (width - left - right) / (len(axes) - 1)
    # names wider than the gap between axes alternate between two rows
    staggered = any(_text_width(n) > step - 8 for n in names)
    extra = 16 if staggered else 0
    total_h = height + 18 * legend_rows + extra
    frame = _Frame(width, total_h, left=round(left), bottom=46 + 18 * legend_rows + extra)
    frame.right = round(right)
    out = frame.open(title, _parallel_desc(axes, runs), "parallel-chart")
    top, bottom = frame.top + 10, frame.top + frame.inner_h
    step = frame.inner_w / (len(axes) - 1)
    for axis in built:
        axis.place(top, bottom)
    xs = [frame.left + i * step for i in range(len(axes))]
    out.append('<g class="axes">')
    for i, (x, axis, name) in enumerate(zip(xs, built, names, strict=True)):
        out.append(
            f'<g class="axis" data-axis="{escape(axis.name)}"><line x1="{x:.1f}" y1="{top:.1f}" '
            f'x2="{x:.1f}" y2="{bottom:.1f}" stroke="#444"/>'
        )
        # ticks on the right of an axis, except the last one's: on its left, inside the chart
        last = i == len(axes) - 1
        tick_x, anchor = (x - 4, "end") if last else (x + 4, "start")
        for tick_y, text in axis.labels():
            out.append(
                f'<text class="tick" x="{tick_x:.1f}" y="{tick_y + 4:.1f}" '
                f'text-anchor="{anchor}" fill="#333">{escape(text)}</text>'
            )
        label_y = bottom + 18 + (16 if staggered and i % 2 else 0)
        out.append(
            f'<text class="axis-label" x="{x:.1f}" y="{label_y:.1f}" text-anchor="middle" '
            f'fill="#1b1f24">{_whole(axis.name, name)}{escape(name)}</text></g>'
        )
    out.append('</g><g class="lines">')
    for i, (label, row) in enumerate(runs):
        pieces: list[list[str]] = [[]]
        for x, axis in zip(xs, built, strict=True):
            y = axis.y(row.get(axis.name))
            if y is None:
                pieces.append([])
            else:
                pieces[-1].append(f"{x:.1f},{y:.1f}")
        tip = f"{label}: " + ", ".join(f"{a}={_show(row.get(a))}" for a in axes)
        out.append(f'<g class="run" data-run="{escape(label)}"><title>{escape(tip)}</title>')
        for piece in pieces:
            if len(piece) >= 2:
                out.append(
                    f'<polyline points="{" ".join(piece)}" fill="none" '
                    f'stroke="{curve_color(i)}" stroke-width="2" opacity="0.85"/>'
                )
            elif piece:
                cx, cy = piece[0].split(",")
                out.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{curve_color(i)}"/>')
        out.append("</g>")
    out.append("</g>")
    labels = [label for label, _ in runs]
    out += legend(labels, frame.left, bottom + 40 + extra, frame.inner_w, 4)
    return "".join([*out, "</svg>"])


@dataclass(frozen=True)
class Dot:
    """One run in a scatter: its x and y, its group (a categorical value) and a label."""

    x: float
    y: float
    group: str
    label: str
    href: str | None = None


def group_scatter(
    title: str,
    dots: Sequence[Dot],
    *,
    x_label: str,
    y_label: str,
    group_label: str | None,
    width: int = 640,
    height: int = 340,
) -> str:
    """Dots coloured by group; the dots of one group are joined in x order, never across groups."""
    groups = list(dict.fromkeys(d.group for d in dots))
    legend_rows = (len(groups) + 2) // 3 if group_label else 0
    frame = _Frame(width, height + 18 * legend_rows, bottom=56 + 18 * legend_rows)
    by = f", coloured by {group_label} ({', '.join(groups)})" if group_label else ""
    desc = f"Scatter of {y_label} against {x_label} for {len(dots)} runs{by}." + "".join(
        f" {d.label}: {_show(d.x)}, {_show(d.y)}." for d in dots[:50]
    )
    out = frame.open(title, desc, "group-scatter")
    if not dots:
        out.append(
            f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" fill="#555">'
            "No run has both fields as numbers</text>"
        )
        return "".join([*out, "</svg>"])
    xt = nice_ticks(min(d.x for d in dots), max(d.x for d in dots))
    yt = nice_ticks(min(d.y for d in dots), max(d.y for d in dots))
    to_x = _Scale(xt[0], xt[-1], frame.left, frame.left + frame.inner_w)
    to_y = _Scale(yt[0], yt[-1], frame.top + frame.inner_h, frame.top)
    out += frame.y_axis(yt, to_y, y_label)
    out += frame.x_axis([(to_x(t), _fmt(t)) for t in xt], x_label)
    for g, group in enumerate(groups):
        members = sorted((d for d in dots if d.group == group), key=lambda d: d.x)
        color = curve_color(g)
        out.append(f'<g class="group" data-group="{escape(group)}">')
        if group_label and len(members) > 1:
            path = " ".join(f"{to_x(d.x):.1f},{to_y(d.y):.1f}" for d in members)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5" '
                'opacity="0.6"/>'
            )
        for d in members:
            tip = f"{d.label}: {x_label} {_show(d.x)}, {y_label} {_show(d.y)}" + (
                f", {group_label} {group}" if group_label else ""
            )
            mark = (
                f'<circle class="point" cx="{to_x(d.x):.1f}" cy="{to_y(d.y):.1f}" r="5" '
                f'fill="{color}" stroke="#fff" stroke-width="1.5"><title>{escape(tip)}</title>'
                "</circle>"
            )
            if d.href:
                mark = f'<a href="{escape(d.href)}" aria-label="{escape(tip)}">{mark}</a>'
            out.append(mark)
        out.append("</g>")
    if group_label:
        out += legend(groups, frame.left, frame.top + frame.inner_h + 44, frame.inner_w, 3)
    return "".join([*out, "</svg>"])


def _numeric(values: Sequence[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(_number(v) is not None for v in present)


def choose_axes(
    rows: Sequence[Mapping[str, Any]], x: str | None, y: str | None, color: str | None
) -> tuple[str | None, str | None, str | None]:
    """Sensible defaults for a scatter: x a swept (differing, numeric) parameter, y the first
    metric (else result), colour a differing categorical parameter. Given choices are kept."""
    fields = list(dict.fromkeys(k for row in rows for k in row))

    def column(key: str) -> list[Any]:
        return [row.get(key) for row in rows]

    def differs(key: str) -> bool:
        return len({repr(v) for v in column(key)}) > 1

    params = [k for k in fields if k.startswith("parameters.")]
    if x is None:
        x = next((k for k in params if differs(k) and _numeric(column(k))), None)
    if y is None:
        y = next(
            (k for k in fields if k.startswith(("metrics.", "results.")) and _numeric(column(k))),
            None,
        )
    if color is None:
        color = next((k for k in params if differs(k) and not _numeric(column(k)) and k != x), None)
    return x, y, color


def scatter_of(
    runs: Sequence[tuple[str, str, Mapping[str, Any]]], x: str, y: str, color: str | None
) -> list[Dot]:
    """The dots of runs ``(id, label, fields)`` that have numbers for ``x`` and ``y``."""
    dots = []
    for run_id, label, row in runs:
        vx, vy = _number(row.get(x)), _number(row.get(y))
        if vx is None or vy is None:
            continue
        group = "" if color is None else str(row.get(color, "—"))
        dots.append(Dot(vx, vy, group, label, f"/ui/experiments/{run_id}"))
    return dots
