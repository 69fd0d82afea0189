"""Recorder commands that look after the store and bring runs back: verify, gc, reindex,
checkout, rerun."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from labledger.cli.recorder_common import (
    dir_option,
    echo_bytes,
    json_option,
    open_workspace,
    print_json,
    record_summary,
)

if TYPE_CHECKING:
    from labledger.runner.workspace import Workspace

__all__ = ["checkout", "gc", "reindex", "rerun", "verify"]


@click.command()
@dir_option
@json_option
def verify(directory: Path | None, as_json: bool) -> None:
    """Re-hash every stored file and name what is damaged or missing, and which runs need it.

    Exits 1 when anything is damaged.

    \b
    Example:
      labledger verify || echo "restore .labledger/ from a backup"
    """
    ws = open_workspace(directory, reading=True)
    health = verify_and_report(ws, as_json)
    if not health:
        raise SystemExit(1)


def verify_and_report(ws: Workspace, as_json: bool) -> bool:
    """Run the check and print its result; True when the store is sound."""
    from labledger.runner.closing import verify_store

    health = verify_store(ws)
    r = health.report
    if as_json:
        print_json(
            {
                "ok": health.ok,
                "checked": r.checked,
                "bytes_checked": r.bytes_checked,
                "damaged": r.damaged,
                "missing": r.missing,
                "unreadable_records": health.unreadable_records,
                "damaged_runs": health.damaged_runs,
            }
        )
        return health.ok
    click.echo(f"Checked {r.checked} blobs ({r.bytes_checked / 1e6:.1f} MB).")
    for digest in r.damaged:
        click.secho(f"DAMAGED  {ws.store.path_of(digest)}", fg="red")
    for digest in r.missing:
        click.secho(f"MISSING  {digest}", fg="red")
    for run_id in health.unreadable_records:
        click.secho(f"UNREADABLE record {ws.record_path(run_id)}", fg="red")
    for run_id, digests in health.damaged_runs.items():
        click.secho(f"run {run_id} needs {len(digests)} damaged or missing blobs", fg="red")
    if health.ok:
        click.secho("All good.", fg="green")
    return health.ok


@click.command()
@dir_option
def gc(directory: Path | None) -> None:
    """Delete stored files that no run refers to any more.

    \b
    Example:
      rm .labledger/runs/01J...json && labledger reindex && labledger gc
    """
    from labledger.runner.closing import collect_garbage

    ws = open_workspace(directory, reading=True)
    with ws.locked(purpose="collecting garbage"):
        count, freed = collect_garbage(ws)
    click.echo(f"Removed {count} unreferenced blobs, freed {freed / 1e6:.1f} MB.")


@click.command()
@dir_option
def reindex(directory: Path | None) -> None:
    """Rebuild the query index from the run record files.

    \b
    Example:
      rsync -a cluster:exp/.labledger/runs/ .labledger/runs/ && labledger reindex
    """
    ws = open_workspace(directory)
    count = ws.index.rebuild()
    click.echo(f"Indexed {count} runs into {ws.index.path}.")


@click.command()
@click.argument("run_ref", metavar="RUN")
@click.argument("dest", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@dir_option
def checkout(run_ref: str, dest: Path, directory: Path | None) -> None:
    """Restore RUN's config, scripts, outputs, logs and code patch into the new folder DIR.

    \b
    Example:
      labledger checkout 3 /tmp/run3 && cd /tmp/run3 && git apply --stat code/patch.diff
    """
    from labledger.runner.closing import checkout as do_checkout

    ws = open_workspace(directory, reading=True)
    refused: list[str] = []
    record, count = do_checkout(ws, run_ref, dest, refused=refused)
    click.echo(f"Restored {count} files of run {record.number} into {dest}.")
    for link in refused:
        click.secho(
            f"Not restored: the link {link} would lead out of {dest}.", fg="yellow", err=True
        )


@click.command()
@click.argument("run_ref", metavar="RUN")
@click.option(
    "--at-recorded-code",
    is_flag=True,
    help="Run in a copy of RUN's recorded git commit and patch (made in a temp folder), "
    "not with today's code.",
)
@dir_option
@json_option
def rerun(run_ref: str, at_recorded_code: bool, directory: Path | None, as_json: bool) -> None:
    """Start a new run with RUN's scripts and variables, run it, say if the outputs match.

    RUN's archived scripts are run from a scratch copy, so the scripts in the folder are not
    changed. The rest of the code is today's: when it differs from RUN's recorded commit and
    patch, rerun says so; --at-recorded-code runs in a copy of the recorded code instead.
    Exits 1 unless the new run completed with the same outputs.

    \b
    Examples:
      labledger rerun 3 && labledger end -o "reproduced run 3"
      labledger rerun 3 --at-recorded-code
    """
    from labledger.core.lifecycle import ExperimentStatus
    from labledger.runner.rerun import code_drift
    from labledger.runner.rerun import rerun as do_rerun

    ws = open_workspace(directory)
    drift = None if at_recorded_code else code_drift(ws, run_ref)
    if drift is not None:
        click.secho(
            f"Today's code differs from run {run_ref}'s recorded code ({drift}); this rerun "
            f"uses today's code. To rerun at the recorded code: "
            f"labledger rerun {run_ref} --at-recorded-code",
            fg="yellow",
            err=True,
        )
    record, diff = do_rerun(
        ws,
        run_ref,
        (lambda _c: None) if as_json else echo_bytes,
        at_recorded_code=at_recorded_code,
    )
    if as_json:
        print_json(
            {
                **record_summary(record),
                "code_differs": drift,
                "at_recorded_code": at_recorded_code,
                "rerun_of": record.rerun_of,
                "outputs_match": diff.match,
                "changed": diff.changed,
                "only_in_original": diff.only_a,
                "only_in_rerun": diff.only_b,
            }
        )
    elif diff.match:
        click.secho(
            f"Run {record.number} {record.status.value}; outputs match ({diff.same} files).",
            fg="green",
        )
    else:
        click.secho(
            f"Run {record.number} {record.status.value}; outputs differ: "
            f"{len(diff.changed)} changed, "
            f"{len(diff.only_a)} missing, {len(diff.only_b)} new.",
            fg="red",
        )
        for path in diff.changed:
            click.echo(f"  changed  {path}")
    if not diff.match or record.status is not ExperimentStatus.COMPLETED:
        raise SystemExit(1)
