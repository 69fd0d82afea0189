"""How the CLI reports errors: a message that says what to do, and the error's exit code."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import click

from labledger.errors import LabledgerError, StorageFull, is_disk_full

__all__ = ["run_cli"]


def run_cli(group: click.Group) -> int:
    """Run ``group`` in standalone mode, turning labledger errors into messages."""
    try:
        group.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except LabledgerError as exc:
        click.secho(f"Error: {exc.message}", fg="red", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except (OSError, sqlite3.OperationalError) as exc:
        sqlite_full = getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        if not (is_disk_full(exc) or sqlite_full):
            raise
        name = getattr(exc, "filename", None)
        where = Path(name) if isinstance(name, str) else Path.cwd()
        full = StorageFull.on_disk(where, "free some space there, then run the command again")
        click.secho(f"Error: {full.message}", fg="red", err=True)
        return full.exit_code
    return 0
