"""Recorder commands of the start, configure, run and end stages: init, new, run, end."""

from __future__ import annotations

from pathlib import Path

import click

from labledger.cli.recorder_common import (
    dir_option,
    echo_bytes,
    json_option,
    open_workspace,
    print_json,
    record_summary,
)

__all__ = ["end", "init", "new", "run"]


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--name", help="Experiment name (default: the folder's name).")
@click.option("--description", default="", help="What the experiment is for.")
def init(directory: Path, name: str | None, description: str) -> None:
    """Make DIRECTORY (default: here) an experiment folder.

    Writes labledger.toml, the runner script templates pre-run.sh, run.sh, post-run.sh and
    fetch.sh where absent, an outputs/ folder and the hidden store .labledger/.

    \b
    Example:
      labledger init --name lr-sweep --description "How does lr change the loss?"
    """
    from labledger.runner.session import init_experiment

    ws = init_experiment(directory, name=name, description=description)
    click.echo(f"Initialised experiment {ws.config().name!r} in {ws.root}")
    click.echo("Next: edit labledger.toml and the scripts, then `labledger new`.")


@click.command()
@dir_option
@click.option("--name", help="A short name for the run.")
@click.option("--hypothesis", help="Why this run: what you expect to see.")
@click.option(
    "--var", "variables", multiple=True, metavar="NAME=VALUE", help="Set a variable (repeatable)."
)
@click.option(
    "--runner",
    "runners",
    multiple=True,
    metavar="PHASE=SCRIPT",
    help="Set a phase's script (repeatable).",
)
@json_option
def new(
    directory: Path | None,
    name: str | None,
    hypothesis: str | None,
    variables: tuple[str, ...],
    runners: tuple[str, ...],
    as_json: bool,
) -> None:
    """Open a new run and write its run.toml, prefilled from the previous run.

    A run that ran but was not ended is ended first (without observations).

    \b
    Example:
      labledger new --name faster --hypothesis "lr 0.1 converges sooner" --var lr=0.1
    """
    from labledger.errors import ConfigError
    from labledger.runner.config import PHASES, parse_var
    from labledger.runner.session import new_run

    ws = open_workspace(directory)
    var_values = dict(parse_var(v) for v in variables)
    runner_map: dict[str, str] = {}
    for item in runners:
        phase, sep, script = item.partition("=")
        if not sep or phase not in PHASES:
            raise ConfigError(
                f"--runner: expected PHASE=SCRIPT with PHASE one of {', '.join(PHASES)}, "
                f"got {item!r}",
                field="--runner",
            )
        runner_map[phase] = script
    with ws.locked(purpose="opening a run"):
        record = new_run(
            ws, name=name, hypothesis=hypothesis, variables=var_values, runners=runner_map
        )
    if as_json:
        print_json({**record_summary(record), "run_config": str(ws.run_config_path)})
        return
    click.echo(
        f"Run {record.number} ({record.run_id}) opened: "
        f"edit {ws.run_config_path.name}, then `labledger run`."
    )


@click.command()
@dir_option
@json_option
def run(directory: Path | None, as_json: bool) -> None:
    """Run the open run's phases: pre-run, run, post-run, fetch.

    Each phase is a real process with the run's variables as environment variables, plus
    LABLEDGER_RUN_ID, LABLEDGER_EXPERIMENT_DIR and LABLEDGER_OUTPUTS_DIR. Output streams to
    the terminal and to a log per phase. A failing phase fails the run: later phases are
    skipped except fetch. Ctrl-C cancels the run and keeps what exists. Exits 1 unless the
    run completed.

    \b
    Example:
      labledger run && labledger show
    """
    from labledger.core.lifecycle import ExperimentStatus
    from labledger.runner.session import execute_run

    ws = open_workspace(directory)
    record = execute_run(ws, (lambda _chunk: None) if as_json else echo_bytes)
    for note in record.archive_notes:
        click.secho(f"Warning: {note}", fg="yellow", err=True)
    if as_json:
        print_json(record_summary(record))
    else:
        color = "green" if record.status is ExperimentStatus.COMPLETED else "red"
        click.secho(f"Run {record.number} {record.status.value}.", fg=color, err=True)
    if record.status is not ExperimentStatus.COMPLETED:
        raise SystemExit(1)


@click.command()
@dir_option
@click.option(
    "-o", "--observations", help="What you saw. Without it: run.toml's field, else $EDITOR."
)
@click.option("--run", "run_ref", help="Run to end (default: the open run).")
@json_option
def end(
    directory: Path | None, observations: str | None, run_ref: str | None, as_json: bool
) -> None:
    """Record the observations, seal the run and clear the folder for the next run.

    outputs/ is emptied of what the run archived; run.toml is removed (it is archived too).

    \b
    Example:
      labledger end --observations "loss plateaued at 0.3 after 20 epochs"
    """
    from labledger.errors import Conflict
    from labledger.runner.closing import observations_from_file, seal

    ws = open_workspace(directory)
    with ws.locked(purpose="ending a run"):
        if run_ref is None and ws.current_id() is None:
            raise Conflict(
                "No run is open. See `labledger list`, or start one with `labledger new`."
            )
        record = ws.resolve(run_ref)
        if observations is None and not observations_from_file(ws, record):
            observations = _ask_editor(record.number)
        record = seal(ws, record, observations=observations)
    if as_json:
        print_json(record_summary(record))
    else:
        click.echo(f"Run {record.number} ended ({record.status.value}). Next: `labledger new`.")


def _ask_editor(number: int) -> str | None:
    import os
    import sys

    if not sys.stdin.isatty() and not (os.environ.get("VISUAL") or os.environ.get("EDITOR")):
        return None  # nobody to type and no editor chosen: end without observations
    marker = "# Lines starting with # are ignored."
    text = click.edit(f"\n{marker}\n# Observations of run {number}: what did you see?\n")
    if text is None:
        return None
    return "\n".join(line for line in text.splitlines() if not line.startswith("#")).strip() or None
