"""Helpers shared by the recorder commands.

Only click and the standard library are imported at module level: command modules import this
one at their top, and ``labledger --help`` must stay fast. Everything else loads on use.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from rich.console import Console

    from labledger.runner.record import RunRecord
    from labledger.runner.workspace import Workspace

__all__ = [
    "console",
    "dir_option",
    "echo_bytes",
    "json_option",
    "open_workspace",
    "print_json",
    "record_summary",
    "text_table",
]

F = TypeVar("F", bound=Callable[..., Any])


def dir_option(func: F) -> F:
    """The ``-C/--dir`` option: the experiment folder (default: found from the working dir)."""
    return click.option(
        "-C",
        "--dir",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Experiment folder (default: the one holding the working directory).",
    )(func)


def json_option(func: F) -> F:
    """The ``--json`` flag: print machine-readable JSON instead of tables."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(func)


def open_workspace(
    directory: Path | None, *, recover: bool = True, reading: bool = False
) -> Workspace:
    """The experiment folder, after ending any run whose recorder was killed.

    ``reading`` commands (show, list, verify ...) still work when that run cannot be ended
    yet because the disk is full: they warn and go on; the next command tries again.
    """
    from labledger.errors import StorageFull
    from labledger.runner.workspace import Workspace

    ws = Workspace.find(directory)
    if recover and ws.may_hold_orphan():
        from labledger.core.lifecycle import ExperimentStatus
        from labledger.runner.session import recover_orphan

        try:
            orphan = recover_orphan(ws)
        except StorageFull as exc:
            if not reading:
                raise
            click.secho(
                f"Warning: a run could not be archived yet. {exc.message}", fg="yellow", err=True
            )
            return ws
        if orphan is not None and orphan.status is ExperimentStatus.UNKNOWN:
            click.secho(
                f"Run {orphan.number} ({orphan.run_id}) was left in progress by a labledger that "
                "was killed; it is now recorded as 'unknown' with the outputs and logs found.",
                fg="yellow",
                err=True,
            )
        elif orphan is not None:
            click.secho(
                f"Run {orphan.number} ({orphan.run_id}) is archived now that there is space: "
                f"{orphan.status.value}.",
                fg="yellow",
                err=True,
            )
    return ws


def console() -> Console:
    """A Rich console on stdout."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


_terminal_gone = False


def echo_bytes(chunk: bytes) -> None:
    """Copy phase output to the terminal as it arrives (the log keeps it if the terminal closed)."""
    global _terminal_gone
    if _terminal_gone:
        return
    try:
        out = sys.stdout.buffer
        out.write(chunk)
        out.flush()
    except (OSError, ValueError):  # a closed terminal (EIO), a closed pipe: the run goes on
        _terminal_gone = True


def record_summary(record: RunRecord) -> dict[str, Any]:
    """The short JSON form of a run used by ``new``, ``run``, ``end`` and ``rerun``."""
    return {
        "run_id": record.run_id,
        "number": record.number,
        "name": record.experiment.run_name,
        "status": record.status.value,
        "hypothesis": record.hypothesis,
        "observations": record.observations,
        "variables": record.variables,
        "phases": [
            {
                "phase": p.phase,
                "status": p.status,
                "exit_code": p.exit_code,
                "duration_s": p.duration_s,
            }
            for p in record.phases
        ],
        "sealed": record.sealed_at is not None,
    }


#: a cell wider than this is cut short with an ellipsis
CELL_WIDTH = 48


def text_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """``rows`` under ``headers`` as lines of left-aligned columns, separated by two spaces.

    Line breaks inside a cell become spaces and cells wider than :data:`CELL_WIDTH` are cut
    short, so every row stays one line.
    """
    cells = [headers] + [
        [
            c if len(c) <= CELL_WIDTH else c[: CELL_WIDTH - 1] + "\u2026"
            for c in (" ".join(str(v).split()) for v in row)
        ]
        for row in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    rule = ["-" * w for w in widths]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [cells[0], rule, *cells[1:]]
    ]
