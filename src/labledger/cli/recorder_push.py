"""``labledger push``: send recorded runs (records and files) to a labledger server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from labledger.cli.recorder_common import dir_option, json_option, open_workspace, print_json

if TYPE_CHECKING:
    from labledger.client.sync import ExperimentClient
    from labledger.runner.record import RunRecord
    from labledger.runner.workspace import Workspace

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


def recorder_payload(record: RunRecord) -> dict[str, Any]:
    """The recorder's part of a run, as the server keeps it in ``metadata.recorder``."""
    data: dict[str, Any] = record.model_dump(mode="json", exclude={"experiment", "events"})
    return data


def push_run(ws: Workspace, client: ExperimentClient, record: RunRecord) -> PushResult:
    """Upload the blobs the server lacks, then the record; safe to repeat."""
    digests = sorted(record.digests())
    missing = client.missing_blobs(digests) if digests else []
    sent_bytes = 0
    for digest in missing:
        path = ws.store.path_of(digest)
        if not path.is_file():
            from labledger.errors import IntegrityError

            raise IntegrityError(
                f"Run {record.number} ({record.run_id}) refers to blob {digest}, which is missing "
                f"from {ws.store.root}; run `labledger verify` to see what is damaged"
            )
        client.upload_blob(digest, path)
        sent_bytes += path.stat().st_size
    from labledger.errors import ExperimentNotFound

    try:
        before: int | None = client.get_experiment(record.run_id).version
    except ExperimentNotFound:
        before = None
    stored = client.import_experiment(
        record.experiment, list(record.events), recorder_payload(record)
    )
    changed = "unchanged" if stored.version == before else "updated"
    outcome = "new" if before is None else changed
    return PushResult(
        run_id=record.run_id,
        number=record.number,
        status=stored.status.value,
        blobs_sent=len(missing),
        bytes_sent=sent_bytes,
        outcome=outcome,
    )


@click.command()
@click.argument("runs", nargs=-1)
@click.option(
    "--server",
    envvar="EXPERIMENT_SERVER_URL",
    default="http://127.0.0.1:8002",
    show_default=True,
    help="The labledger server (env EXPERIMENT_SERVER_URL).",
)
@click.option(
    "--token", envvar="LABLEDGER_TOKEN", default=None, help="API token (env LABLEDGER_TOKEN)."
)
@dir_option
@json_option
def push(
    runs: tuple[str, ...], server: str, token: str | None, directory: Path | None, as_json: bool
) -> None:
    """Send runs (records and every stored file) to a labledger server, so a team sees them.

    Without RUNS, every run of the experiment is pushed. Pushing again sends only what is new:
    files go by their digest, and the server keeps each run under its own id.

    \b
    Examples:
      labledger push --server http://lab-server:8002
      labledger push 3 7 --server http://lab-server:8002 --token "$LABLEDGER_TOKEN"
    """
    import httpx

    from labledger.client.sync import ExperimentClient

    ws = open_workspace(directory)
    records = [ws.resolve(ref) for ref in runs] if runs else list(ws.records())
    if not records:
        raise click.ClickException(
            "No runs to push yet; record one with `labledger new` and `labledger run`."
        )
    results: list[PushResult] = []
    try:
        with ExperimentClient(server, token=token) as client:
            for record in records:
                results.append(push_run(ws, client, record))
    except httpx.TransportError as exc:
        raise click.ClickException(
            f"Cannot reach {server}: {exc}. Check --server, or start one with `labledger serve`."
        ) from exc
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
