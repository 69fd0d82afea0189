"""``labledger push``: send recorded runs (records and files) to a labledger server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from labledger.cli.recorder_common import dir_option, json_option, open_workspace, print_json
from labledger.cli.server_options import server_option, token_option

if TYPE_CHECKING:
    from labledger.client.sync import ExperimentClient
    from labledger.runner.push import PushItem

__all__ = ["PushResult", "push", "push_run"]


@dataclass(frozen=True)
class PushResult:
    """What one run's push did."""

    run_id: str
    number: int
    status: str
    blobs_sent: int
    bytes_sent: int
    outcome: str  # "new", "updated" or "unchanged"


def _push_outcomes(client: ExperimentClient, item: PushItem) -> None:
    """Send the run's results (when the server's differ) and its metric series (every point
    with its step, so a repeat stores nothing twice)."""
    from labledger.runner.outcomes import read_metrics_file

    record = item.record
    if record.results:
        held = {r.name: r.value for r in client.get_results(record.run_id)}
        changed = {k: v for k, v in record.results.items() if held.get(k) != v}
        if changed:
            client.add_results(record.run_id, changed)
    for entry in record.files.get("metrics") or []:
        path = item.blobs.get(entry.digest) if entry.digest else None
        if path is None:
            continue
        points = [
            {"name": name, "value": value, "step": step}
            for name, series in read_metrics_file(path).series.items()
            for step, value in series
        ]
        if points:
            client.add_metric_points(record.run_id, points)


def push_run(client: ExperimentClient, item: PushItem) -> PushResult:
    """Upload the blobs the server lacks, then the run's record; safe to repeat."""
    from labledger.errors import ExperimentNotFound, IntegrityError, LabledgerError

    record = item.record
    names = {e.digest: e.path for entries in record.files.values() for e in entries if e.digest}
    missing = client.missing_blobs(sorted(item.blobs)) if item.blobs else []
    sent_bytes = 0
    for digest in missing:
        path = item.blobs[digest]
        if not path.is_file():
            raise IntegrityError(
                f"Run {record.number} ({record.run_id}) refers to blob {digest}, which is missing "
                f"from {path.parent.parent}; run `labledger verify` to see what is damaged"
            )
        try:
            client.upload_blob(digest, path)
        except LabledgerError as exc:
            what = names.get(digest, f"blob {digest}")
            raise click.ClickException(
                f"Run {record.number} ({record.run_id}): cannot push {what} "
                f"({path.stat().st_size:,} bytes): {exc}"
            ) from exc
        sent_bytes += path.stat().st_size
    try:
        before: int | None = client.get_experiment(record.run_id).version
    except ExperimentNotFound:
        before = None
    recorder = item.experiment.metadata.get("recorder", {})
    stored = client.import_experiment(item.experiment, item.events, recorder)
    _push_outcomes(client, item)
    changed = "unchanged" if stored.version == before else "updated"
    return PushResult(
        run_id=record.run_id,
        number=record.number,
        status=stored.status.value,
        blobs_sent=len(missing),
        bytes_sent=sent_bytes,
        outcome="new" if before is None else changed,
    )


@click.command()
@click.argument("runs", nargs=-1)
@server_option
@token_option
@dir_option
@json_option
def push(
    runs: tuple[str, ...],
    server_url: str | None,
    token: str | None,
    directory: Path | None,
    as_json: bool,
) -> None:
    """Send runs (records and every stored file) to a labledger server, so a team sees them.

    Without RUNS, every run of the experiment is pushed. Pushing again sends only what is new:
    files go by their digest, and the server keeps each run under its own id.

    \b
    Examples:
      labledger push --server http://lab-server:8002
      labledger push 3 7 --server http://lab-server:8002 --token "$LABLEDGER_TOKEN"
    """
    from labledger.client.sync import ExperimentClient
    from labledger.runner.push import push_items

    ws = open_workspace(directory, reading=True)
    items = list(push_items(ws, runs or None))
    if not items:
        raise click.ClickException(
            "No finished runs to push yet; finish one with `labledger run` (runs still planned "
            "or in progress are pushed once they end)."
        )
    results: list[PushResult] = []
    with ExperimentClient(server_url, token=token) as client:
        server = client.url
        for item in items:
            results.append(push_run(client, item))
    if as_json:
        print_json([r.__dict__ for r in results])
        return
    from rich.table import Table

    from labledger.cli.recorder_common import console

    table = Table(title=f"Pushed to {server}")
    for column in ("run", "id", "status", "files sent", "bytes sent", "on the server"):
        table.add_column(column)
    for r in results:
        table.add_row(
            str(r.number), r.run_id, r.status, str(r.blobs_sent), f"{r.bytes_sent:,}", r.outcome
        )
    console().print(table)
