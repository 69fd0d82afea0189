"""``labledger metrics``: a run's metric series, listed, printed or plotted in the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from labledger.cli.recorder_common import (
    console,
    dir_option,
    json_option,
    open_workspace,
    print_json,
)

if TYPE_CHECKING:
    from labledger.runner.outcomes import MetricFile
    from labledger.runner.record import RunRecord
    from labledger.runner.workspace import Workspace

__all__ = ["metrics", "plot"]


def series_of(ws: Workspace, rec: RunRecord) -> MetricFile:
    """The run's series: from the live file while it runs, else from its archived file."""
    from labledger.runner.outcomes import MetricFile, read_metrics_file
    from labledger.runner.session import metrics_path

    live = metrics_path(ws, rec)
    if live.is_file():
        return read_metrics_file(live)
    entries = rec.files.get("metrics") or []
    digest = entries[0].digest if entries else None
    if digest is None or not ws.store.has(digest):
        return MetricFile()
    return read_metrics_file(ws.store.path_of(digest))


def plot(points: list[tuple[int, float]], *, width: int = 64, height: int = 12) -> list[str]:
    """A text plot of ``(step, value)`` points: each column shows its bucket's range."""
    if not points:
        return ["(no points)"]
    ordered = sorted(points)
    lo = min(v for _, v in ordered)
    hi = max(v for _, v in ordered)
    span = hi - lo or 1.0
    first, last = ordered[0][0], ordered[-1][0]
    columns: list[tuple[float, float] | None] = [None] * width
    for step, value in ordered:
        col = 0 if last == first else round((step - first) / (last - first) * (width - 1))
        seen = columns[col]
        columns[col] = (
            (value, value) if seen is None else (min(seen[0], value), max(seen[1], value))
        )
    rows = []
    for r in range(height):
        top = hi - span * r / height
        bottom = hi - span * (r + 1) / height
        line = "".join(
            "█" if c is not None and c[0] <= top and c[1] >= bottom else " " for c in columns
        )
        label = (
            f"{top:>10.4g} │"
            if r == 0
            else (f"{lo:>10.4g} │" if r == height - 1 else " " * 11 + "│")
        )
        rows.append(label + line)
    rows.append(" " * 11 + "└" + "─" * width)
    rows.append(" " * 12 + f"step {first}".ljust(width - 12) + f"{last:>12}")
    return rows


@click.command()
@click.argument("run_ref", metavar="[RUN]", required=False)
@click.argument("name", required=False)
@dir_option
@json_option
def metrics(run_ref: str | None, name: str | None, directory: Path | None, as_json: bool) -> None:
    """List RUN's metric series, or print and plot the series NAME (live while it runs).

    Scripts write points as JSON lines to the file named by $LABLEDGER_METRICS, for example
    `echo '{"loss": 0.3, "step": 5}' >> "$LABLEDGER_METRICS"`.

    \b
    Examples:
      labledger metrics                 # the series of the open (or last) run
      labledger metrics 3 loss          # run 3's loss, plotted
      labledger metrics last loss --json
    """
    from rich.table import Table

    ws = open_workspace(directory)
    rec = ws.resolve(run_ref)
    found = series_of(ws, rec)
    if name is None:
        if as_json:
            print_json({n: [list(p) for p in pts] for n, pts in found.series.items()})
            return
        if not found.series:
            click.echo(
                f"Run {rec.number} has no metric series. Scripts write them as JSON lines to "
                '$LABLEDGER_METRICS, e.g. {"loss": 0.3, "step": 5}.',
                err=True,
            )
            return
        table = Table("metric", "last", "min", "max", "points", title=f"run {rec.number}")
        for key, pts in found.series.items():
            values = [v for _, v in pts]
            last = max(pts)[1]
            table.add_row(key, f"{last:g}", f"{min(values):g}", f"{max(values):g}", str(len(pts)))
        console().print(table)
        return
    if name not in found.series:
        known = ", ".join(found.series) or "none"
        raise click.ClickException(f"Run {rec.number} has no metric {name!r} (it has: {known}).")
    points = found.series[name]
    if as_json:
        print_json([{"step": s, "value": v} for s, v in points])
        return
    click.echo(f"{name} of run {rec.number} ({len(points)} points, last {max(points)[1]:g})")
    for line in plot(points):
        click.echo(line)
