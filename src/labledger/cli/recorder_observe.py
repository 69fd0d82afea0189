"""Recorder commands of the observe stage: show, logs, ls, compare."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import click

from labledger.cli.recorder_common import (
    console,
    dir_option,
    json_option,
    open_workspace,
    print_json,
    text_table,
)

if TYPE_CHECKING:
    from labledger.runner.record import RunRecord
    from labledger.runner.workspace import Workspace

__all__ = ["compare", "logs", "ls", "show"]


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


@click.command()
@click.argument("run_ref", metavar="[RUN]", required=False)
@dir_option
@json_option
def show(run_ref: str | None, directory: Path | None, as_json: bool) -> None:
    """Show everything recorded about RUN (default: the open run, else the last one).

    RUN is a run number (3 or #3), a run id or a unique prefix of one, or `last`.

    \b
    Example:
      labledger show 3 --json | jq .experiment.status
    """
    # Plain click output: importing Rich would cost more than everything else `show` does.
    ws = open_workspace(directory, reading=True)
    rec = ws.resolve(run_ref)
    if as_json:
        print_json(rec.model_dump(mode="json"))
        return
    out = click.echo
    exp = rec.experiment
    bold_status = click.style(exp.status.value, bold=True)
    out(f"{click.style(f'Run {rec.number}', bold=True)}  {rec.run_id}  {bold_status}")
    out(f"name:         {rec.name}")
    out(f"started:      {exp.started_at or '-'}    ended: {exp.ended_at or '-'}")
    out(f"sealed:       {rec.sealed_at or 'no (end it with `labledger end`)'}")
    if rec.rerun_of:
        match = {True: "outputs match", False: "outputs differ", None: "not compared"}
        out(f"rerun of:     {rec.rerun_of} ({match[rec.rerun_outputs_match]})")
    out(f"hypothesis:   {rec.hypothesis or '-'}")
    out(f"observations: {rec.observations or '-'}")
    if rec.variables:
        out("variables:    " + ", ".join(f"{k}={v!r}" for k, v in rec.variables.items()))
    if rec.results:
        out("results:      " + ", ".join(f"{k}={v!r}" for k, v in rec.results.items()))
    if rec.metrics:
        out("metrics:")
        metric_rows = [
            [name, f"{m.last:g}", f"{m.min:g}", f"{m.max:g}", str(m.count), str(m.last_step)]
            for name, m in rec.metrics.items()
        ]
        header = ["metric", "last", "min", "max", "points", "last step"]
        for line in text_table(header, metric_rows):
            out("  " + line)
    if rec.phases:
        out("phases:")
        rows = [
            [
                p.phase,
                p.script,
                p.status,
                "" if p.exit_code is None else str(p.exit_code),
                "" if p.duration_s is None else f"{p.duration_s:.2f}",
            ]
            for p in rec.phases
        ]
        for line in text_table(["phase", "script", "status", "exit", "seconds"], rows):
            out("  " + line)
    if rec.code:
        c = rec.code
        dirty = f", dirty: {len(c.changed_files)} changed files" if c.dirty else ", clean"
        where = (
            f"{(c.commit or 'no commit')[:12]} on {c.branch or '-'}{dirty}"
            if c.vcs == "git"
            else "not a git repository"
        )
        out(f"code:         {where}")
    if rec.environment:
        e = rec.environment
        out(f"environment:  {e.host}, {e.os}, Python {e.python_version}, {e.cpu_count} CPUs")
        for gpu in e.gpus:
            out(f"              GPU {gpu}")
    for section, entries in rec.files.items():
        total = sum(e.size for e in entries)
        out(f"{section + ':':<14}{len(entries)} files, {_human_size(total)}")
    for event in rec.events[-5:]:
        note = event.data.get("note") if event.data else None
        change = f"{event.from_status} -> {event.to_status}" if event.to_status else ""
        out(f"  {event.at:%Y-%m-%d %H:%M:%S} {event.type.value} {change} {note or ''}".rstrip())


def _open_log(ws: Workspace, rec: RunRecord, phase: str) -> BinaryIO | None:
    live = ws.live_dir / rec.run_id / f"{phase}.log"
    if live.is_file():  # the run is being recorded: read the log as it grows
        return live.open("rb")
    for p in rec.phases:
        if p.phase == phase and p.log_digest:
            return ws.store.open(p.log_digest)
    return None


@click.command()
@click.argument("run_ref", metavar="[RUN]", required=False)
@click.option(
    "--phase", type=click.Choice(["pre-run", "run", "post-run", "fetch"]), help="Only this phase."
)
@dir_option
def logs(run_ref: str | None, phase: str | None, directory: Path | None) -> None:
    """Print the logs of RUN's phases (default: the open run, else the last one).

    \b
    Example:
      labledger logs 3 --phase run | tail
    """
    import shutil
    import sys

    ws = open_workspace(directory, reading=True)
    rec = ws.resolve(run_ref)
    phases = [p.phase for p in rec.phases if phase is None or p.phase == phase]
    if not phases:
        raise click.ClickException(f"Run {rec.number} has no logs yet (it has not run).")
    for name in phases:
        if phase is None:
            click.secho(f"==> {name}", bold=True)
        log = _open_log(ws, rec, name)
        if log is not None:
            with log:  # stream: a log can be far larger than memory
                shutil.copyfileobj(log, sys.stdout.buffer, 1 << 20)
        sys.stdout.buffer.flush()


@click.command()
@click.argument("run_ref", metavar="[RUN]", required=False)
@click.option("--all", "show_all", is_flag=True, help="Also list config, scripts, logs and patch.")
@dir_option
@json_option
def ls(run_ref: str | None, show_all: bool, directory: Path | None, as_json: bool) -> None:
    """List the outputs archived for RUN (default: the open run, else the last one).

    \b
    Example:
      labledger ls 3 --all
    """
    from rich.table import Table

    ws = open_workspace(directory, reading=True)
    rec = ws.resolve(run_ref)
    sections = list(rec.files) if show_all else ["outputs"]
    entries = [e for s in sections for e in rec.files.get(s, [])]
    if as_json:
        print_json([e.model_dump(mode="json") for e in entries])
        return
    table = Table("path", "size", "digest", title=f"run {rec.number}: {', '.join(sections)}")
    for e in entries:
        detail = f"-> {e.target}" if e.kind == "symlink" else (e.digest or "")[:12]
        table.add_row(e.path, _human_size(e.size) if e.kind == "file" else e.kind, detail)
    console().print(table)


@click.command()
@click.argument("run_a", metavar="RUN_A")
@click.argument("run_b", metavar="RUN_B")
@dir_option
@json_option
def compare(run_a: str, run_b: str, directory: Path | None, as_json: bool) -> None:
    """Compare two runs: variables, scripts, outputs and code version.

    \b
    Example:
      labledger compare 2 3
    """
    from labledger.runner.compare import compare_runs

    ws = open_workspace(directory, reading=True)
    report = compare_runs(ws, ws.resolve(run_a), ws.resolve(run_b))
    if as_json:
        print_json(report.to_dict())
        return
    click.echo(report.render())
