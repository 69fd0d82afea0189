"""``labledger campaign``: create campaigns from ``*.campaign.yaml``, control them, get reports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from labledger.cli.server_options import server_option, token_option

__all__ = ["campaign"]


def _client(server_url: str | None, token: str | None) -> Any:
    from labledger.client.sync import ExperimentClient

    return ExperimentClient(server_url, token=token)


@click.group()
def campaign() -> None:
    """Campaigns on a labledger server: create (with sweeps), list, pause, resume, cancel, report.

    \b
    Examples:
      labledger campaign create screen.campaign.yaml
      labledger campaign report 01J... --format md -o report.md
    """


@campaign.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@server_option
@token_option
def create(spec: Path, server_url: str | None, token: str | None) -> None:
    """Create a campaign, and every experiment it lists or sweeps, from a YAML file.

    \b
    Example (screen.campaign.yaml):
      campaign_name: buffer screen
      experiment_design: {experiment_name: titration}
      status: queued            # or planned
      sweep:
        grid: {ph: [6, 7, 8], salt: [NaCl, KCl]}
        list: [{ph: 9}]
    \b
      labledger campaign create screen.campaign.yaml
    """
    from labledger.client.labcalls import load_campaign_spec

    loaded = load_campaign_spec(spec)
    with _client(server_url, token) as client:
        created = client.create_campaign(loaded)
    click.echo(
        f"campaign {created.campaign_id} '{created.campaign_name}' created with "
        f"{created.experiment_count or len(created.experiment_ids or [])} experiment(s)"
    )


@campaign.command("list")
@click.option("--number", "-n", type=int, default=50, show_default=True)
@server_option
@token_option
def list_campaigns(number: int, server_url: str | None, token: str | None) -> None:
    """The latest campaigns with their status and size.

    \b
    Example:
      labledger campaign list -n 10
    """
    from rich.console import Console
    from rich.table import Table

    with _client(server_url, token) as client:
        campaigns = client.get_campaigns(number)
    table = Table()
    table.add_column("id", no_wrap=True, min_width=26)
    table.add_column("name")
    table.add_column("status", no_wrap=True)
    table.add_column("experiments", justify="right")
    table.add_column("created", no_wrap=True)
    for c in campaigns:
        table.add_row(
            c.campaign_id,
            c.campaign_name,
            c.status.value,
            str(len(c.experiment_ids or []) if c.experiment_count is None else c.experiment_count),
            c.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    Console().print(table)


@campaign.command()
@click.argument("campaign_id")
@server_option
@token_option
def show(campaign_id: str, server_url: str | None, token: str | None) -> None:
    """A campaign's status and progress.

    \b
    Example:
      labledger campaign show 01J...
    """
    with _client(server_url, token) as client:
        found = client.get_campaign(campaign_id)
        progress = client.campaign_progress(campaign_id)
    click.echo(f"{found.campaign_name} ({found.campaign_id}): {found.status.value}")
    counts = ", ".join(f"{k} {v}" for k, v in progress["counts"].items() if v)
    click.echo(f"  {progress['finished']} of {progress['total']} finished; {counts or 'empty'}")


def _action(name: str, verb: str) -> None:
    @campaign.command(name)
    @click.argument("campaign_id")
    @server_option
    @token_option
    def command(campaign_id: str, server_url: str | None, token: str | None) -> None:
        with _client(server_url, token) as client:
            result = getattr(client, f"{name}_campaign")(campaign_id)
        click.echo(f"campaign {result.campaign_id} is now {result.status.value}")

    command.help = f"{verb}\n\n\b\nExample:\n  labledger campaign {name} 01J...\n"


_action("pause", "Pause a campaign: its running experiments pause, its queue is held.")
_action("resume", "Resume a paused campaign.")
_action("cancel", "Cancel a campaign and every unfinished experiment of it.")


@campaign.command()
@click.argument("campaign_id")
@click.option(
    "--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md", show_default=True
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of the terminal.",
)
@server_option
@token_option
def report(
    campaign_id: str, fmt: str, output: Path | None, server_url: str | None, token: str | None
) -> None:
    """A campaign report: counts by status, success rate, durations, results, timeline.

    \b
    Example:
      labledger campaign report 01J... --format html -o report.html
    """
    import json

    with _client(server_url, token) as client:
        body = client.campaign_report(campaign_id, fmt)
    text = json.dumps(body, indent=2) if fmt == "json" else str(body)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
