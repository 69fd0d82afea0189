"""Recorder commands of the observe stage: show, logs, ls, compare."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

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
    run_id = ws.resolve_id(run_ref)
    if as_json:
        print_json(ws.load(run_id).to_dict())
        return
    # The record file is printed from its JSON, without building the record (whose structs
    # and msgspec `show` need not import); a record that does not read that way is read
    # through them, which names the file and what is wrong with it when it is damaged.
    try:
        lines = _show_lines(ws.load_json(run_id))
    except (LookupError, TypeError, ValueError, AttributeError):
        lines = _show_lines(ws.load(run_id).to_dict())
    for line in lines:
        click.echo(line)


def _when(value: str | None) -> str:
    """A timestamp of the record's JSON as the record shows it (``str`` of the datetime)."""
    return str(datetime.fromisoformat(value)) if value else "-"


def _show_lines(rec: dict[str, Any]) -> list[str]:
    """What ``show`` prints for the record ``rec`` (in its JSON form)."""
    from labledger.core.lifecycle import ExperimentStatus

    out: list[str] = []
    exp = rec["experiment"]
    number = rec["number"]
    status = ExperimentStatus(exp["status"]).value
    if not isinstance(number, int) or not isinstance(exp["experiment_id"], str):
        raise TypeError("not a record")
    bold_status = click.style(status, bold=True)
    out.append(f"{click.style(f'Run {number}', bold=True)}  {exp['experiment_id']}  {bold_status}")
    out.append(f"name:         {exp.get('run_name') or f'run {number}'}")
    out.append(
        f"started:      {_when(exp.get('started_at'))}    ended: {_when(exp.get('ended_at'))}"
    )
    sealed = rec.get("sealed_at")
    out.append(f"sealed:       {_when(sealed) if sealed else 'no (end it with `labledger end`)'}")
    if rec.get("rerun_of"):
        match = {True: "outputs match", False: "outputs differ", None: "not compared"}
        out.append(f"rerun of:     {rec['rerun_of']} ({match[rec.get('rerun_outputs_match')]})")
    out.append(f"hypothesis:   {rec.get('hypothesis') or '-'}")
    out.append(f"observations: {rec.get('observations') or '-'}")
    variables = exp.get("parameters") or {}
    if variables:
        out.append("variables:    " + ", ".join(f"{k}={v!r}" for k, v in variables.items()))
    results = rec.get("results") or {}
    if results:
        out.append("results:      " + ", ".join(f"{k}={v!r}" for k, v in results.items()))
    metrics = rec.get("metrics") or {}
    if metrics:
        out.append("metrics:")
        metric_rows = [
            [
                name,
                f"{float(m['last']):g}",
                f"{float(m['min']):g}",
                f"{float(m['max']):g}",
                str(m["count"]),
                str(m["last_step"]),
            ]
            for name, m in metrics.items()
        ]
        header = ["metric", "last", "min", "max", "points", "last step"]
        out.extend("  " + line for line in text_table(header, metric_rows))
    phases = rec.get("phases") or []
    if phases:
        out.append("phases:")
        rows = [
            [
                p["phase"],
                p["script"],
                p["status"],
                "" if p.get("exit_code") is None else str(p["exit_code"]),
                "" if p.get("duration_s") is None else f"{p['duration_s']:.2f}",
            ]
            for p in phases
        ]
        header = ["phase", "script", "status", "exit", "seconds"]
        out.extend("  " + line for line in text_table(header, rows))
    code = rec.get("code")
    if code:
        dirty = (
            f", dirty: {len(code.get('changed_files') or [])} changed files"
            if code.get("dirty")
            else ", clean"
        )
        where = (
            f"{(code.get('commit') or 'no commit')[:12]} on {code.get('branch') or '-'}{dirty}"
            if code.get("vcs") == "git"
            else "not a git repository"
        )
        out.append(f"code:         {where}")
    env = rec.get("environment")
    if env:
        out.append(
            f"environment:  {env.get('host', '')}, {env.get('os', '')}, "
            f"Python {env.get('python_version', '')}, {env.get('cpu_count')} CPUs"
        )
        out.extend(f"              GPU {gpu}" for gpu in env.get("gpus") or [])
    for section, entries in (rec.get("files") or {}).items():
        total = sum(e.get("size", 0) for e in entries)
        out.append(f"{section + ':':<14}{len(entries)} files, {_human_size(total)}")
    for event in (rec.get("events") or [])[-5:]:
        data = event.get("data")
        note = data.get("note") if data else None
        to_status = event.get("to_status")
        change = f"{event.get('from_status')} -> {to_status}" if to_status else ""
        at = datetime.fromisoformat(event["at"])
        if not isinstance(event["type"], str):
            raise TypeError("not an event")
        out.append(f"  {at:%Y-%m-%d %H:%M:%S} {event['type']} {change} {note or ''}".rstrip())
    return out


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
        import msgspec

        print_json(msgspec.to_builtins(entries))
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
