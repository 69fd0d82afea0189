"""``labledger token``: make, list and revoke API tokens, straight on the server's database."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from labledger.storage.access_sql import TokenStore

__all__ = ["token"]

_DB_URL = click.option(
    "--db-url",
    default=None,
    help="Database URL (default: the setting EXPERIMENT_DB_URL or the embedded SQLite).",
)


def _store(db_url: str | None) -> tuple[Engine, TokenStore]:
    from labledger.settings import load_settings
    from labledger.storage.access_sql import TokenStore
    from labledger.storage.engine import create_db_engine
    from labledger.storage.schema import ensure_ready

    settings = load_settings(db_url=db_url)
    engine = create_db_engine(settings.database_url)
    ensure_ready(engine, settings.database_url)
    return engine, TokenStore(engine)


@click.group()
def token() -> None:
    """Make, list and revoke the API tokens of this server.

    Once any token exists, every request but /health needs one
    ('Authorization: Bearer <secret>'). Scopes: read (look), write (also create and change),
    admin (also purge the trash and manage tokens). Run this on the server machine; a running
    server sees the change within a second.

    \b
    Examples:
      labledger token create robot-arm --scope write
      labledger token list
      labledger token revoke robot-arm
    """


@token.command()
@click.argument("name")
@click.option(
    "--scope",
    type=click.Choice(["read", "write", "admin"]),
    required=True,
    help="read: look only; write: also create and change; admin: also purge and manage tokens.",
)
@click.option("--note", default=None, help="What the token is for (shown by `token list`).")
@_DB_URL
def create(name: str, scope: str, note: str | None, db_url: str | None) -> None:
    """Make a token and print its secret (shown this once; only its hash is kept).

    Example: labledger token create robot-arm --scope write --note "arm controller"
    """
    import getpass

    engine, store = _store(db_url)
    try:
        made, secret = store.create(name, scope, note=note, created_by=f"cli:{getpass.getuser()}")
    finally:
        engine.dispose()
    click.echo(f"Token {made.name!r} ({made.scope.value}) created. Its secret, shown only now:")
    click.echo(secret)
    click.echo(
        "Clients send it as 'Authorization: Bearer <secret>'; the MADSci client takes it in the "
        "server URL: http://token:<secret>@host:8002/",
        err=True,
    )


@token.command(name="list")
@click.option("--active", is_flag=True, help="Leave out revoked tokens.")
@_DB_URL
def list_(active: bool, db_url: str | None) -> None:
    """List the tokens: name, scope, when made and last used, revoked or not.

    Example: labledger token list --active
    """
    from rich.console import Console
    from rich.table import Table

    engine, store = _store(db_url)
    try:
        tokens = store.list(include_revoked=not active)
    finally:
        engine.dispose()
    if not tokens:
        click.echo("No tokens: the server lets anyone on its network in (see the README).")
        return
    table = Table("name", "scope", "created", "last used", "revoked", "note")

    def when(value: object) -> str:
        return "" if value is None else f"{value:%Y-%m-%d %H:%M}"

    for t in tokens:
        table.add_row(
            t.name,
            t.scope.value,
            when(t.created_at),
            when(t.last_used_at),
            when(t.revoked_at),
            t.note or "",
        )
    Console().print(table)


@token.command()
@click.argument("name")
@_DB_URL
def revoke(name: str, db_url: str | None) -> None:
    """Revoke a token; requests with it are refused from now on (within a second).

    Example: labledger token revoke robot-arm
    """
    engine, store = _store(db_url)
    try:
        revoked = store.revoke(name)
    finally:
        engine.dispose()
    assert revoked.revoked_at is not None
    click.echo(f"Token {name!r} revoked at {revoked.revoked_at:%Y-%m-%d %H:%M:%S} UTC.")
