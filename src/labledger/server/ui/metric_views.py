"""Metric series on the pages: one curve chart per series of an experiment."""

from __future__ import annotations

from html import escape

from labledger.core.metrics import MetricStore
from labledger.server.ui.curves import Curve, curve_chart

__all__ = ["CHART_POINTS", "compare_charts", "metric_charts", "metrics_fragment"]

#: points per drawn curve (a longer series is downsampled, keeping its extremes)
CHART_POINTS = 600


def metric_charts(store: MetricStore, experiment_id: str, run: str) -> list[tuple[str, str]]:
    """``(series name, SVG)`` for each metric series of the experiment, by name."""
    out = []
    for series in store.list_series(experiment_id):
        read = store.read_series(experiment_id, series.name, CHART_POINTS)
        curve = Curve(series.name, [(p.step, p.value) for p in read.points])
        out.append(
            (series.name, curve_chart(f"{series.name} of {run}", [curve], y_label=series.name))
        )
    return out


def metrics_fragment(charts: list[tuple[str, str]]) -> str:
    """The HTML of the charts (the experiment page's metrics section swaps it in live)."""
    if not charts:
        return '<p class="muted">No metric series yet.</p>'
    return "".join(
        f'<figure class="chart-box metric" data-metric="{escape(name)}">{svg}</figure>'
        for name, svg in charts
    )


def compare_charts(store: MetricStore, runs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(series name, SVG)`` per metric of any of ``runs`` (``(experiment id, title)``): one
    curve per run that has the series, in the runs' order (so a run keeps its colour)."""
    read = store.read_many([experiment_id for experiment_id, _ in runs], CHART_POINTS)
    names = sorted({name for series in read.values() for name in series})
    out = []
    for name in names:
        curves = [Curve(title, read[experiment_id].get(name, [])) for experiment_id, title in runs]
        svg = curve_chart(f"{name} by step, {len(runs)} runs", curves, y_label=name)
        out.append((name, svg))
    return out
