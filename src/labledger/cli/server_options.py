"""The options of every command that talks to a labledger server: where it is, and the token.

``--server`` and ``--server-url`` are two spellings of one option on every such command; it
reads ``EXPERIMENT_SERVER_URL`` when not given, and the client falls back to
``http://127.0.0.1:8002``.
"""

from __future__ import annotations

import click

__all__ = ["server_option", "token_option"]

server_option = click.option(
    "--server",
    "--server-url",
    "server_url",
    envvar="EXPERIMENT_SERVER_URL",
    default=None,
    metavar="URL",
    help="The labledger server (default: EXPERIMENT_SERVER_URL, else http://127.0.0.1:8002).",
)

token_option = click.option(
    "--token",
    envvar="LABLEDGER_TOKEN",
    default=None,
    help="API token, when the server asks for one (default: LABLEDGER_TOKEN).",
)
