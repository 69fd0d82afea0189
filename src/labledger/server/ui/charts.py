"""Server-rendered SVG charts: a bar chart, a scatter/line chart and a status timeline.

Every chart is a complete ``<svg>`` with ``role="img"``, a ``<title>`` and a ``<desc>`` naming
what it shows, labelled axes with ticks, and a ``<title>`` on every mark so a pointer or a screen
reader gets the exact value. Colours are never the only channel: bars and lanes carry text labels.
No JavaScript and no third-party library is needed to draw or read them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from itertools import count

__all__ = [
    "PALETTE",
    "STATUS_COLORS",
    "Bar",
    "Point",
    "Span",
    "bar_chart",
    "curve_color",
    "legend",
    "nice_ticks",
    "scatter_chart",
    "timeline_chart",
]

#: fill per status (Okabe-Ito based: distinguishable with common colour-vision deficiencies)
STATUS_COLORS: dict[str, str] = {
    "planned": "#8a8f98",
    "queued": "#56b4e9",
    "in_progress": "#0072b2",
    "paused": "#e69f00",
    "completed": "#009e73",
    "failed": "#d55e00",
    "cancelled": "#595959",
    "unknown": "#cc79a7",
    "active": "#0072b2",
}

#: Okabe-Ito, then darker variants: distinguishable with common colour-vision deficiencies
PALETTE = (
    "#0072b2",
    "#d55e00",
    "#009e73",
    "#cc79a7",
    "#e69f00",
    "#56b4e9",
    "#000000",
    "#8a6d00",
)


def curve_color(index: int) -> str:
    """The colour of the ``index``-th curve."""
    return PALETTE[index % len(PALETTE)]


DEFAULT_COLOR = "#0072b2"
FONT = "font-family:system-ui,sans-serif;font-size:12px"
_ids = count(1)


@dataclass(frozen=True)
class Bar:
    """One bar: its label, value and fill colour."""

    label: str
    value: float
    color: str = DEFAULT_COLOR


@dataclass(frozen=True)
class Point:
    """One point: x is a number or a category; ``label`` names it; ``href`` links it;
    ``group`` is the series it belongs to (a line joins only points of one group)."""

    x: float | str
    y: float
    label: str = ""
    href: str | None = None
    group: str = ""


@dataclass(frozen=True)
class Span:
    """A period in one state: from ``start`` to ``end`` (None: still in it at ``now``)."""

    state: str
    start: datetime
    end: datetime | None = None


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or abs(value) < 1e-3:
        return f"{value:.3g}"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.4g}"


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Round tick values covering ``[low, high]`` (1, 2 or 5 times a power of ten apart)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("tick bounds must be finite")
    if high < low:
        low, high = high, low
    # a range too narrow to print at this magnitude (or none at all) is widened around its middle
    min_span = max(max(abs(low), abs(high)) * 1e-6, 1e-300)
    if high - low <= min_span:
        pad = max(abs(high) * 0.1, min_span)
        low, high = low - pad, high + pad
    raw = (high - low) / max(target, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step)
    last = math.ceil(high / step)
    # integer multiples of the step, so float error never accumulates; tidied to the step's digits
    digits = max(0, -math.floor(math.log10(step)))
    ticks = [round(i * step, digits) for i in range(first, last + 1)]
    # values below the float range's resolution (e.g. -5e-324) round to the wrong side of 0
    if ticks[0] > low:
        ticks.insert(0, round((first - 1) * step, digits))
    if ticks[-1] < high:
        ticks.append(round((last + 1) * step, digits))
    return ticks


class _Frame:
    """The plot area inside an SVG of ``width`` x ``height`` with margins for axes and labels."""

    def __init__(self, width: int, height: int, left: int = 64, bottom: int = 56) -> None:
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = left, 28, 36, bottom

    @property
    def inner_w(self) -> float:
        return self.width - self.left - self.right

    @property
    def inner_h(self) -> float:
        return self.height - self.top - self.bottom

    def open(self, title: str, desc: str, css_class: str) -> list[str]:
        uid = next(_ids)
        return [
            f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css_class}" role="img" '
            f'viewBox="0 0 {self.width} {self.height}" width="{self.width}" '
            f'height="{self.height}" aria-labelledby="chart-t{uid} chart-d{uid}" style="{FONT}">',
            f'<title id="chart-t{uid}">{escape(title)}</title>',
            f'<desc id="chart-d{uid}">{escape(desc)}</desc>',
            f'<text class="chart-title" x="{self.width / 2:.1f}" y="20" text-anchor="middle" '
            f'font-size="14" font-weight="600" fill="#1b1f24">{escape(title)}</text>',
        ]

    def y_axis(self, ticks: Sequence[float], to_y: _Scale, label: str) -> list[str]:
        out = [
            f'<g class="axis y-axis"><line x1="{self.left}" y1="{self.top}" x2="{self.left}" '
            f'y2="{self.top + self.inner_h}" stroke="#444"/>'
        ]
        for tick in ticks:
            y = to_y(tick)
            out.append(
                f'<line x1="{self.left - 4}" y1="{y:.1f}" x2="{self.left + self.inner_w}" '
                f'y2="{y:.1f}" stroke="#e3e5e8"/>'
                f'<text class="tick" x="{self.left - 7}" y="{y + 4:.1f}" text-anchor="end" '
                f'fill="#333">{escape(_fmt(tick))}</text>'
            )
        mid = self.top + self.inner_h / 2
        out.append(
            f'<text class="axis-label" x="14" y="{mid:.1f}" text-anchor="middle" fill="#1b1f24" '
            f'transform="rotate(-90 14 {mid:.1f})">{escape(label)}</text></g>'
        )
        return out

    def x_axis(self, ticks: Sequence[tuple[float, str]], label: str) -> list[str]:
        base = self.top + self.inner_h
        out = [
            f'<g class="axis x-axis"><line x1="{self.left}" y1="{base:.1f}" '
            f'x2="{self.left + self.inner_w}" y2="{base:.1f}" stroke="#444"/>'
        ]
        for x, text in ticks:
            out.append(
                f'<line x1="{x:.1f}" y1="{base:.1f}" x2="{x:.1f}" y2="{base + 4:.1f}" '
                f'stroke="#444"/><text class="tick" x="{x:.1f}" y="{base + 17:.1f}" '
                f'text-anchor="middle" fill="#333">{escape(text)}</text>'
            )
        out.append(
            f'<text class="axis-label" x="{self.left + self.inner_w / 2:.1f}" '
            f'y="{self.height - 8}" text-anchor="middle" fill="#1b1f24">{escape(label)}</text></g>'
        )
        return out


class _Scale:
    """A linear map from data values to pixels."""

    def __init__(self, lo: float, hi: float, px_lo: float, px_hi: float) -> None:
        self.lo, self.hi, self.px_lo, self.px_hi = lo, hi, px_lo, px_hi

    def __call__(self, value: float) -> float:
        span = self.hi - self.lo or 1.0
        return self.px_lo + (value - self.lo) / span * (self.px_hi - self.px_lo)

    def affine(self) -> tuple[float, float]:
        """``(a, b)`` with ``self(v) == a * v + b`` (up to rounding)."""
        a = (self.px_hi - self.px_lo) / (self.hi - self.lo or 1.0)
        return a, self.px_lo - a * self.lo


def _empty(frame: _Frame, message: str) -> str:
    return (
        f'<text class="empty" x="{frame.width / 2:.1f}" y="{frame.height / 2:.1f}" '
        f'text-anchor="middle" fill="#555">{escape(message)}</text>'
    )


def bar_chart(
    title: str,
    bars: Sequence[Bar],
    *,
    x_label: str,
    y_label: str,
    width: int = 560,
    height: int = 300,
) -> str:
    """Vertical bars with their value written above each one."""
    frame = _Frame(width, height)
    summary = ", ".join(f"{b.label}: {_fmt(b.value)}" for b in bars) or "no data"
    out = frame.open(title, f"Bar chart of {y_label} by {x_label}. {summary}.", "bar-chart")
    if not bars:
        out.append(_empty(frame, "No data yet"))
        return "".join([*out, "</svg>"])
    # headroom above the tallest bar for its value label
    ticks = nice_ticks(0.0, max(max(b.value for b in bars), 1.0) * 1.12)
    to_y = _Scale(0.0, ticks[-1], frame.top + frame.inner_h, frame.top)
    out += frame.y_axis(ticks, to_y, y_label)
    slot = frame.inner_w / len(bars)
    bar_w = min(slot * 0.7, 80.0)
    labels: list[tuple[float, str]] = []
    out.append('<g class="bars">')
    for i, bar in enumerate(bars):
        cx = frame.left + slot * (i + 0.5)
        top = to_y(bar.value)
        h = frame.top + frame.inner_h - top
        out.append(
            f'<rect class="bar" data-label="{escape(bar.label)}" data-value="{_fmt(bar.value)}" '
            f'x="{cx - bar_w / 2:.1f}" y="{top:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
            f'fill="{escape(bar.color)}"><title>{escape(bar.label)}: {_fmt(bar.value)}</title>'
            f'</rect><text class="bar-value" x="{cx:.1f}" y="{top - 5:.1f}" '
            f'text-anchor="middle" fill="#1b1f24">{_fmt(bar.value)}</text>'
        )
        labels.append((cx, bar.label))
    out.append("</g>")
    out += frame.x_axis(labels, x_label)
    return "".join([*out, "</svg>"])


def scatter_chart(
    title: str,
    points: Sequence[Point],
    *,
    x_label: str,
    y_label: str,
    line: bool = False,
    group_label: str | None = None,
    width: int = 640,
    height: int = 340,
) -> str:
    """Points of ``y`` against ``x`` (numbers, or categories in first-seen order).

    ``line`` joins the points of each group in x order (for a result that varies smoothly with
    a parameter), never points of different groups. With more than one group each has its own
    colour and a legend entry naming it (``group_label`` says what the groups are).
    """
    groups = list(dict.fromkeys(p.group for p in points))
    grouped = len(groups) > 1
    legend_rows = (len(groups) + 2) // 3 if grouped else 0
    frame = _Frame(width, height + 18 * legend_rows, bottom=56 + 18 * legend_rows)
    kind = "Line" if line else "Scatter"
    by = f", one line per {group_label or 'group'} ({', '.join(groups)})" if grouped else ""
    desc = f"{kind} chart of {y_label} against {x_label}, {len(points)} points{by}."
    out = frame.open(title, desc, "scatter-chart")
    if not points:
        out.append(_empty(frame, "No numeric results to plot yet"))
        return "".join([*out, "</svg>"])
    categorical = any(isinstance(p.x, str) for p in points)
    categories: list[str] = []
    if categorical:
        categories = list(dict.fromkeys(str(p.x) for p in points))
        xs = [float(categories.index(str(p.x))) for p in points]
        to_x = _Scale(-0.5, len(categories) - 0.5, frame.left, frame.left + frame.inner_w)
        x_ticks = [(to_x(float(i)), c) for i, c in enumerate(categories)]
    else:
        xs = [float(p.x) for p in points]
        xt = nice_ticks(min(xs), max(xs))
        to_x = _Scale(xt[0], xt[-1], frame.left, frame.left + frame.inner_w)
        x_ticks = [(to_x(t), _fmt(t)) for t in xt]
    yt = nice_ticks(min(p.y for p in points), max(p.y for p in points))
    to_y = _Scale(yt[0], yt[-1], frame.top + frame.inner_h, frame.top)
    out += frame.y_axis(yt, to_y, y_label)
    out += frame.x_axis(x_ticks, x_label)
    placed = sorted(zip(xs, points, strict=True), key=lambda item: item[0])
    colors = {g: curve_color(i) if grouped else DEFAULT_COLOR for i, g in enumerate(groups)}
    if line:
        for group in groups:
            members = [(x, p) for x, p in placed if p.group == group]
            if len(members) < 2:
                continue
            path = " ".join(f"{to_x(x):.1f},{to_y(p.y):.1f}" for x, p in members)
            out.append(
                f'<polyline class="series" data-group="{escape(group)}" points="{path}" '
                f'fill="none" stroke="{colors[group]}" stroke-width="2"/>'
            )
    out.append('<g class="points">')
    for x, p in placed:
        shown = p.x if isinstance(p.x, str) else _fmt(p.x)
        tip = f"{p.label + ': ' if p.label else ''}{x_label} {shown}, {y_label} {_fmt(p.y)}"
        if grouped:
            tip += f" ({p.group})"
        circle = (
            f'<circle class="point" cx="{to_x(x):.1f}" cy="{to_y(p.y):.1f}" r="5" '
            f'fill="{colors[p.group]}" stroke="#fff" stroke-width="1.5" '
            f'data-x="{escape(str(shown))}" data-y="{_fmt(p.y)}" '
            f'data-group="{escape(p.group)}"><title>{escape(tip)}</title></circle>'
        )
        if p.href:
            circle = f'<a href="{escape(p.href)}" aria-label="{escape(tip)}">{circle}</a>'
        out.append(circle)
    out.append("</g>")
    if grouped:
        out += legend(groups, frame.left, frame.top + frame.inner_h + 44, frame.inner_w, 3)
    return "".join([*out, "</svg>"])


def legend(names: Sequence[str], left: float, top: float, width: float, per_row: int) -> list[str]:
    """A legend of coloured squares named in text, ``per_row`` entries a row of 18 px."""
    out = ['<g class="legend">']
    column_w = width / per_row
    for i, name in enumerate(names):
        x = left + (i % per_row) * column_w
        y = top + (i // per_row) * 18
        label = name if len(name) <= 26 else name[:25] + "…"
        out.append(
            f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{curve_color(i)}"/>'
            f'<text x="{x + 18:.1f}" y="{y:.1f}" fill="#1b1f24">{escape(label)}</text>'
        )
    out.append("</g>")
    return out


def _time_ticks(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    total = max((end - start).total_seconds(), 1.0)
    steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
    step = next((s for s in steps if total / s <= 6), math.ceil(total / 6 / 86400) * 86400)
    epoch = start.timestamp()
    first = math.ceil(epoch / step) * step
    fmt = "%H:%M:%S" if step < 60 else ("%H:%M" if step < 86400 else "%Y-%m-%d")
    ticks: list[tuple[datetime, str]] = []
    value = first
    while value <= end.timestamp():
        at = datetime.fromtimestamp(value, tz=start.tzinfo)
        ticks.append((at, at.strftime(fmt)))
        value += step
    return ticks


def timeline_chart(
    title: str,
    spans: Sequence[Span],
    *,
    now: datetime,
    width: int = 720,
) -> str:
    """One lane per state, a bar for each period spent in it, over a UTC time axis."""
    lanes = list(dict.fromkeys(s.state for s in spans))
    height = 90 + 30 * max(len(lanes), 1)
    frame = _Frame(width, height, left=96, bottom=50)
    desc_parts = [
        f"{s.state} from {s.start:%Y-%m-%d %H:%M:%S}"
        + (f" to {s.end:%H:%M:%S}" if s.end else " until now")
        for s in spans
    ]
    desc = "Status timeline (UTC). " + ("; ".join(desc_parts) or "no events") + "."
    out = frame.open(title, desc, "timeline-chart")
    if not spans:
        out.append(_empty(frame, "No status changes recorded"))
        return "".join([*out, "</svg>"])
    start = min(s.start for s in spans)
    last = max([now, *(s.end for s in spans if s.end)])
    if last <= start:
        last = start + timedelta(seconds=1)
    end = last + (last - start) * 0.04  # room for the mark of a state entered at the very end
    to_x = _Scale(start.timestamp(), end.timestamp(), frame.left, frame.left + frame.inner_w)
    lane_h = frame.inner_h / len(lanes)
    out.append('<g class="lanes">')
    for i, lane in enumerate(lanes):
        y = frame.top + lane_h * (i + 0.5)
        out.append(
            f'<text class="lane-label" x="{frame.left - 8}" y="{y + 4:.1f}" text-anchor="end" '
            f'fill="#1b1f24">{escape(lane)}</text>'
        )
    out.append('</g><g class="spans">')
    for span in spans:
        x0 = to_x(span.start.timestamp())
        x1 = to_x((span.end or last).timestamp())
        y = frame.top + lane_h * lanes.index(span.state) + lane_h * 0.2
        seconds = ((span.end or now) - span.start).total_seconds()
        held = f"for {_duration(seconds)}" if span.end else f"since then ({_duration(seconds)})"
        tip = f"{span.state}: {span.start:%Y-%m-%d %H:%M:%S} UTC, {held}"
        color = STATUS_COLORS.get(span.state, DEFAULT_COLOR)
        out.append(
            f'<rect class="span" data-state="{escape(span.state)}" x="{x0:.1f}" y="{y:.1f}" '
            f'width="{max(x1 - x0, 6.0):.1f}" height="{lane_h * 0.6:.1f}" fill="{color}">'
            f"<title>{escape(tip)}</title></rect>"
        )
    out.append("</g>")
    out += frame.x_axis(
        [(to_x(at.timestamp()), text) for at, text in _time_ticks(start, end)], "time (UTC)"
    )
    return "".join([*out, "</svg>"])


def _duration(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
