"""``labledger db``: check, upgrade, back up and restore the database."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["db"]

_DB_URL = click.option(
    "--db-url",
    default=None,
    help="Database URL (default: the setting EXPERIMENT_DB_URL or SQLite).",
)


@click.group()
def db() -> None:
    """Check, upgrade, back up and restore the database.

    \b
    Examples:
      labledger db check
      labledger db upgrade --db-url postgresql+psycopg://lab@db.local/labledger
      labledger db backup --to backups/
      labledger db restore backups/labledger-20261121T101010Z.sqlite3
    """


@db.command()
@_DB_URL
def check(db_url: str | None) -> None:
    """Say whether the database is at the schema version this labledger needs.

    Exits 1 when an upgrade is needed. Example: labledger db check
    """
    from labledger.settings import load_settings
    from labledger.storage.engine import create_db_engine
    from labledger.storage.schema import check as check_schema
    from labledger.storage.schema import refuse_newer, upgrade_command

    settings = load_settings(db_url=db_url)
    engine = create_db_engine(settings.database_url)
    try:
        state = check_schema(engine)
    finally:
        engine.dispose()
    if state.empty:
        click.echo(f"Database is empty; it will be initialised at {state.head} on first start.")
    elif state.up_to_date:
        click.echo(f"Database schema is up to date ({state.current}).")
    else:
        refuse_newer(state)
        click.echo(
            f"Database schema is at {state.current or 'none'}, this labledger needs {state.head}.\n"
            f"Run: {upgrade_command(settings.database_url)}",
            err=True,
        )
        raise SystemExit(1)


@db.command()
@_DB_URL
@click.option("--backup-dir", type=click.Path(path_type=Path), default=None)
def upgrade(db_url: str | None, backup_dir: Path | None) -> None:
    """Back up the database, then migrate it to the current schema (restored on failure).

    Example: labledger db upgrade
    """
    from labledger.settings import load_settings
    from labledger.storage.schema import upgrade as run_upgrade

    settings = load_settings(db_url=db_url)
    state, backup_file = run_upgrade(
        settings.database_url, backup_dir=backup_dir or settings.backups
    )
    if backup_file is not None:
        click.echo(f"Backed up to {backup_file}")
    click.echo(f"Database schema is at {state.current}.")


@db.command()
@_DB_URL
@click.option(
    "--to",
    "backup_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for the backup.",
)
def backup(db_url: str | None, backup_dir: Path | None) -> None:
    """Write a consistent backup of the database (safe while the server runs).

    Example: labledger db backup --to backups/
    """
    from labledger.settings import load_settings
    from labledger.storage.schema import backup as run_backup

    settings = load_settings(db_url=db_url)
    path = run_backup(settings.database_url, backup_dir or settings.backups)
    click.echo(str(path))


@db.command()
@_DB_URL
@click.argument("backup_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def restore(db_url: str | None, backup_file: Path, yes: bool) -> None:
    """Replace the database's content with a backup. Stop the server first.

    Example: labledger db restore backups/labledger-20261121T101010Z.sqlite3 --yes
    """
    from labledger.settings import load_settings
    from labledger.storage.schema import restore as run_restore

    settings = load_settings(db_url=db_url)
    if not yes:
        click.confirm(f"Replace the content of {settings.public()['db_url']}?", abort=True)
    run_restore(settings.database_url, backup_file)
    click.echo(f"Restored {backup_file}")
