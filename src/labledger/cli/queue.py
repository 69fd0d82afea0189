"""``labledger queue``: what a server has queued and running, on which worker, since when."""

from __future__ import annotations

import click

from labledger.cli.server_options import server_option, token_option

__all__ = ["queue"]


@click.command()
@click.option("--campaign", "campaign_id", default=None, help="Only this campaign's experiments.")
@server_option
@token_option
def queue(campaign_id: str | None, server_url: str | None, token: str | None) -> None:
    """Show what is running (worker, claimed at, lease until) and what is queued, in order.

    \b
    Example:
      labledger queue --campaign 01J...
    """
    from datetime import UTC, datetime

    from rich.console import Console
    from rich.table import Table

    from labledger.client.sync import ExperimentClient

    with ExperimentClient(server_url, token=token) as client:
        answer = client.get_queue(campaign_id)
    now = datetime.now(UTC)

    def ago(stamp: str | None) -> str:
        if not stamp:
            return ""
        seconds = (now - datetime.fromisoformat(stamp)).total_seconds()
        return f"{seconds:.0f} s ago" if seconds >= 0 else f"in {-seconds:.0f} s"

    console = Console()
    running = Table(title=f"running ({answer['counts']['running']})")
    for name in ("id", "name", "status", "worker", "claimed", "lease ends", "attempt"):
        running.add_column(name, no_wrap=name in ("id", "worker"))
    for e in answer["running"]:
        running.add_row(
            e["_id"],
            e["run_name"] or "",
            e["lifecycle_status"],
            e["worker_id"] or "",
            ago(e["claimed_at"]),
            ago(e["lease_expires_at"]),
            str(e["attempts"]),
        )
    queued = Table(title=f"queued ({answer['counts']['queued']}), next first")
    for name in ("id", "name", "priority", "not before", "waiting"):
        queued.add_column(name, no_wrap=name == "id")
    for e in answer["queued"]:
        queued.add_row(
            e["_id"],
            e["run_name"] or "",
            str(e["priority"]),
            e["not_before"] or "",
            ago(e["created_at"]),
        )
    console.print(running)
    console.print(queued)
