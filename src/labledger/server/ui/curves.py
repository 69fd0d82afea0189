"""Server-rendered SVG curves: one or more metric series by step, with a legend.

As :mod:`.charts`: a complete ``<svg>`` with ``role="img"``, ``<title>`` and ``<desc>`` (the
desc names every curve with its last, lowest and highest value, so the chart reads without
seeing it), axes with round ticks, and a legend whose entries carry the curve's name as text,
so colour is never the only channel (curves beyond the eighth are also dashed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from labledger.server.ui.charts import (
    PALETTE,
    _empty,
    _fmt,
    _Frame,
    _Scale,
    curve_color,
    nice_ticks,
)

__all__ = ["PALETTE", "Curve", "curve_chart", "curve_color"]

_DASHES = ("", "6 3", "2 3", "8 3 2 3")


@dataclass(frozen=True)
class Curve:
    """A named series of points in step order, each ``(step, value, ...)``."""

    name: str
    points: Sequence[Sequence[float]]


def _dash(index: int) -> str:
    return _DASHES[(index // len(PALETTE)) % len(_DASHES)]


def curve_chart(
    title: str,
    curves: Sequence[Curve],
    *,
    x_label: str = "step",
    y_label: str = "value",
    width: int = 640,
    height: int = 300,
) -> str:
    """Curves of value by step on shared axes; a legend under the plot when more than one."""
    # a curve keeps the colour of its position among all curves, drawn or not
    indexed = [(i, c) for i, c in enumerate(curves) if c.points]
    shown = [c for _, c in indexed]
    legend_rows = 0 if len(shown) <= 1 else (len(shown) + 2) // 3
    frame = _Frame(width, height + 18 * legend_rows, bottom=56 + 18 * legend_rows)
    lows = [min(p[1] for p in c.points) for c in shown]
    highs = [max(p[1] for p in c.points) for c in shown]
    summary = "; ".join(
        f"{c.name}: {len(c.points)} points, last {_fmt(c.points[-1][1])}, "
        f"lowest {_fmt(low)}, highest {_fmt(high)}"
        for c, low, high in zip(shown, lows, highs, strict=True)
    )
    desc = f"Line chart of {y_label} by {x_label}. {summary or 'no points'}."
    out = frame.open(title, desc, "curve-chart")
    if not shown:
        out.append(_empty(frame, "No points yet"))
        return "".join([*out, "</svg>"])
    # points come in step order: a curve's first and last step are its ends
    xt = nice_ticks(min(c.points[0][0] for c in shown), max(c.points[-1][0] for c in shown))
    yt = nice_ticks(min(lows), max(highs))
    to_x = _Scale(xt[0], xt[-1], frame.left, frame.left + frame.inner_w)
    to_y = _Scale(yt[0], yt[-1], frame.top + frame.inner_h, frame.top)
    out += frame.y_axis(yt, to_y, y_label)
    out += frame.x_axis([(to_x(t), _fmt(t)) for t in xt], x_label)
    out.append('<g class="curves">')
    (ax, bx), (ay, by) = to_x.affine(), to_y.affine()  # a long path: no call per point
    for i, curve in indexed:
        color, dash = curve_color(i), _dash(i)
        path = " ".join(f"{ax * p[0] + bx:.1f},{ay * p[1] + by:.1f}" for p in curve.points)
        last_x, last_y = curve.points[-1][:2]
        tip = f"{curve.name}: last {_fmt(last_y)} at {x_label} {_fmt(last_x)}"
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(
            f'<g class="curve" data-name="{escape(curve.name)}" data-last="{_fmt(last_y)}">'
            f"<title>{escape(tip)}</title>"
            f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.8"'
            f'{dashed} stroke-linejoin="round"/>'
            f'<circle cx="{to_x(last_x):.1f}" cy="{to_y(last_y):.1f}" r="3" fill="{color}"/></g>'
        )
    out.append("</g>")
    if legend_rows:
        out.append('<g class="legend">')
        column_w = frame.inner_w / 3
        top = frame.top + frame.inner_h + 44
        for row, (i, curve) in enumerate(indexed):
            x = frame.left + (row % 3) * column_w
            y = top + (row // 3) * 18
            dash = _dash(i)
            dashed = f' stroke-dasharray="{dash}"' if dash else ""
            label = curve.name if len(curve.name) <= 28 else curve.name[:27] + "…"
            out.append(
                f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 22:.1f}" y2="{y - 4:.1f}" '
                f'stroke="{curve_color(i)}" stroke-width="3"{dashed}/>'
                f'<text x="{x + 28:.1f}" y="{y:.1f}" fill="#1b1f24">{escape(label)}</text>'
            )
        out.append("</g>")
    return "".join([*out, "</svg>"])
