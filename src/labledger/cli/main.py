"""The ``labledger`` command group (run by :mod:`labledger.cli.entry`).

Commands are loaded lazily from :data:`COMMANDS` so that ``labledger --help`` imports only
click. Command modules import click at the top and everything heavier inside the command body.
"""

from __future__ import annotations

import importlib

import click

__all__ = ["COMMANDS", "cli"]

#: command name -> "module:attribute" of a click command or group
COMMANDS: dict[str, str] = {
    "serve": "labledger.cli.serve:serve",
    "db": "labledger.cli.db:db",
    "token": "labledger.cli.token:token",
    # campaigns and the queue (a server's)
    "campaign": "labledger.cli.campaign:campaign",
    "worker": "labledger.cli.worker:worker",
    "queue": "labledger.cli.queue:queue",
    # the local recorder
    "init": "labledger.cli.recorder_start:init",
    "new": "labledger.cli.recorder_start:new",
    "run": "labledger.cli.recorder_start:run",
    "end": "labledger.cli.recorder_start:end",
    "show": "labledger.cli.recorder_observe:show",
    "logs": "labledger.cli.recorder_observe:logs",
    "ls": "labledger.cli.recorder_observe:ls",
    "compare": "labledger.cli.recorder_observe:compare",
    "metrics": "labledger.cli.recorder_metrics:metrics",
    "list": "labledger.cli.recorder_query:list_runs",
    "export": "labledger.cli.recorder_query:export",
    "verify": "labledger.cli.recorder_store:verify",
    "gc": "labledger.cli.recorder_store:gc",
    "reindex": "labledger.cli.recorder_store:reindex",
    "checkout": "labledger.cli.recorder_store:checkout",
    "rerun": "labledger.cli.recorder_store:rerun",
    "push": "labledger.cli.recorder_push:push",
    # other trackers
    "import": "labledger.cli.import_command:import_group",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when listed or run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="labledger", prog_name="labledger")
def cli() -> None:
    """Record and control experiments: a lab service and a local run recorder.

    \b
    Service:   labledger serve            (MADSci-compatible API on 127.0.0.1:8002)
    Recorder:  labledger init; labledger new; labledger run; labledger end
    """
