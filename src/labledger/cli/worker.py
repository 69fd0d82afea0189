"""``labledger worker``: drain the queue with an experiment application or a shell command."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from labledger.cli.server_options import server_option, token_option

if TYPE_CHECKING:
    from labledger.client.application import ExperimentApplication

__all__ = ["worker"]


@click.command()
@click.argument("app", required=False, metavar="[MODULE:CLASS]")
@click.option(
    "-c",
    "--command",
    "command",
    default=None,
    help="Shell command to run per experiment instead of an application class "
    "(parameters in LABLEDGER_PARAMETERS and LABLEDGER_PARAM_<NAME>).",
)
@server_option
@token_option
@click.option("--worker-id", default=None, help="Name of this worker (default: host:pid).")
@click.option("--campaign", "campaign_id", default=None, help="Only claim from this campaign.")
@click.option(
    "--lease",
    "lease_seconds",
    type=float,
    default=None,
    help="Lease length in seconds (default: the server's lease_seconds).",
)
@click.option(
    "--max", "max_experiments", type=int, default=None, help="Stop after this many experiments."
)
@click.option(
    "--wait/--exit-when-empty",
    default=False,
    show_default=True,
    help="Keep polling an empty queue, or stop when it is empty.",
)
@click.option(
    "--poll",
    "poll_interval",
    type=float,
    default=1.0,
    show_default=True,
    help="Seconds between polls of an empty queue and of a paused experiment.",
)
@click.option(
    "--path",
    "paths",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Folder to import the application from (repeatable; default: the cwd).",
)
def worker(
    app: str | None,
    command: str | None,
    server_url: str | None,
    token: str | None,
    worker_id: str | None,
    campaign_id: str | None,
    lease_seconds: float | None,
    max_experiments: int | None,
    wait: bool,
    poll_interval: float,
    paths: tuple[str, ...],
) -> None:
    """Claim queued experiments one after another and run each, holding it by heartbeat.

    Runs an ExperimentApplication subclass (MODULE:CLASS, its run_experiment gets the
    parameters) or, with --command, a shell command per experiment. A failure is recorded with
    its traceback (or the command's stderr) and the worker goes on.

    \b
    Examples:
      labledger worker titration:Titration --server-url http://127.0.0.1:8002 --wait
      labledger worker -c 'python run.py' --campaign 01J... --exit-when-empty
    """
    import logging
    import signal
    import sys

    from labledger.cli.entry import long_running
    from labledger.client.sync import ExperimentClient
    from labledger.client.worker import Worker, default_worker_id

    long_running()

    if (app is None) == (command is None):
        raise click.UsageError("give either MODULE:CLASS or --command 'shell command', not both")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    name = worker_id or default_worker_id()
    client = ExperimentClient(server_url, token=token)
    if command is not None:
        from labledger.cli.worker_command import CommandRunner

        the_worker = Worker(
            client,
            CommandRunner(command, server_url=client.url),
            make_client=lambda: ExperimentClient(server_url, token=token),
            worker_id=name,
            campaign_id=campaign_id,
            lease_seconds=lease_seconds,
            poll_interval=poll_interval,
        )
    else:
        application = _load_app(app or "", paths, server_url, token, poll_interval)
        the_worker = application.make_worker(
            worker_id=name, campaign_id=campaign_id, lease_seconds=lease_seconds
        )

    def on_term(signum: int, frame: object) -> None:
        click.echo(f"worker {name}: stopping after the current experiment", err=True)
        the_worker.stop()

    signal.signal(signal.SIGTERM, on_term)
    click.echo(f"worker {name} claiming from {client.url}", err=True)
    try:
        stats = the_worker.run(max_experiments=max_experiments, wait=wait)
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        client.close()
    click.echo(f"worker {name}: {stats}", err=True)


def _load_app(
    target: str, paths: tuple[str, ...], server_url: str | None, token: str | None, poll: float
) -> ExperimentApplication:
    import importlib
    import sys
    from pathlib import Path

    from labledger.client.application import ExperimentApplication

    module_name, _, class_name = target.partition(":")
    if not module_name or not class_name:
        raise click.BadParameter(
            f"expected MODULE:CLASS (e.g. titration:Titration), got {target!r}", param_hint="APP"
        )
    for folder in (*paths, str(Path.cwd())):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(
            f"cannot import {module_name!r}: {exc}; run from its folder or give --path",
            param_hint="APP",
        ) from exc
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, ExperimentApplication)):
        raise click.BadParameter(
            f"{target} is not an ExperimentApplication subclass", param_hint="APP"
        )
    return cls(server_url, token=token, poll_interval=poll)
