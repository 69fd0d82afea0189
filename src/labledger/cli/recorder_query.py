"""Recorder commands that query many runs: list and export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from labledger.cli.recorder_common import (
    dir_option,
    json_option,
    open_workspace,
    print_json,
    text_table,
)

__all__ = ["export", "list_runs"]

_STATUSES = ["planned", "in_progress", "completed", "failed", "cancelled", "unknown"]


def _filters(func: Any) -> Any:
    func = click.option(
        "--where",
        "where",
        multiple=True,
        metavar="EXPR",
        help="Variable expression, e.g. 'lr>0.01', 'opt=adam', 'note~warm' (repeatable, AND).",
    )(func)
    func = click.option("--text", help="Text in the name, hypothesis or observations.")(func)
    func = click.option(
        "--status",
        "statuses",
        multiple=True,
        type=click.Choice(_STATUSES),
        help="Keep runs in this state (repeatable).",
    )(func)
    return func


def _query(
    directory: Path | None,
    statuses: tuple[str, ...],
    text: str | None,
    where: tuple[str, ...],
    limit: int | None,
    sort: str | None = None,
) -> list[dict[str, Any]]:
    from labledger.runner.index import RunQuery, parse_var_filter

    ws = open_workspace(directory, reading=True)
    query = RunQuery(
        statuses=list(statuses),
        text=text,
        where=[parse_var_filter(w) for w in where],
        limit=limit,
        sort=sort,
    )
    return ws.index.query(query)


@click.command(name="list")
@_filters
@click.option(
    "-n", "--limit", type=click.IntRange(min=1), help="At most this many runs (newest first)."
)
@click.option(
    "--sort",
    metavar="NAME",
    help="Order by a variable, result or metric (last value); '-NAME' for descending.",
)
@dir_option
@json_option
def list_runs(
    statuses: tuple[str, ...],
    text: str | None,
    where: tuple[str, ...],
    limit: int | None,
    sort: str | None,
    directory: Path | None,
    as_json: bool,
) -> None:
    """List runs, newest first, with filters on variables, results and metrics.

    \b
    Examples:
      labledger list --status completed --where 'lr>0.01'
      labledger list --where 'loss<0.1' --sort -accuracy
      labledger list --text plateau --json
    """
    rows = _query(directory, statuses, text, where, limit, sort)
    if as_json:
        print_json(rows)
        return

    def outcomes(r: dict[str, Any]) -> str:
        return ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in {**r["metrics"], **r["results"]}.items()
        )

    # A plain aligned table: Rich's layout costs about half a millisecond per row, which
    # made listing a thousand runs take most of a second.
    lines = text_table(
        ["#", "id", "status", "name", "variables", "results", "started", "hypothesis"],
        [
            [
                str(r["number"]),
                r["run_id"][:10],
                r["status"],
                r["name"],
                ", ".join(f"{k}={v}" for k, v in r["variables"].items()),
                outcomes(r),
                (r["started_at"] or "")[:16].replace("T", " "),
                r["hypothesis"][:40],
            ]
            for r in rows
        ],
    )
    click.echo("\n".join(lines))
    if not rows:
        click.echo("No runs match. Start one with `labledger new`.", err=True)


_COLUMNS = [
    "number",
    "run_id",
    "name",
    "status",
    "created_at",
    "started_at",
    "ended_at",
    "sealed_at",
    "git_commit",
    "git_branch",
    "dirty",
    "rerun_of",
    "hypothesis",
    "observations",
]


@click.command()
@_filters
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (default: stdout).",
)
@dir_option
def export(
    statuses: tuple[str, ...],
    text: str | None,
    where: tuple[str, ...],
    fmt: str,
    output: Path | None,
    directory: Path | None,
) -> None:
    """Export runs (one row each, a column per variable) as CSV or JSON.

    \b
    Example:
      labledger export --format csv -o runs.csv --status completed
    """
    import csv
    import io
    import json

    rows = _query(directory, statuses, text, where, None)
    if fmt == "json":
        data = json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    else:
        names = sorted({k for r in rows for k in r["variables"]})
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(_COLUMNS + [f"var:{n}" for n in names])
        for r in rows:
            writer.writerow([r[c] for c in _COLUMNS] + [r["variables"].get(n, "") for n in names])
        data = buf.getvalue()
    if output is None:
        click.echo(data, nl=False)
    else:
        output.write_text(data, encoding="utf-8")
        click.echo(f"Wrote {len(rows)} runs to {output}", err=True)
