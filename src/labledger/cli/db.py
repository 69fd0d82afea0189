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
      labledger db restore backups/labledger-20261121T101010123456Z
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
    """Back up the database and the result files (safe while the server runs).

    Writes a folder labledger-<time>/ with the database, every result file, and backup.json
    saying what it holds. Example: labledger db backup --to backups/
    """
    from labledger.server.backup import make_backup
    from labledger.settings import load_settings

    settings = load_settings(db_url=db_url)
    summary = make_backup(settings, backup_dir or settings.backups)
    click.echo(f"Backed up {summary.describe()}")


@db.command()
@_DB_URL
def gc(db_url: str | None) -> None:
    """Remove result files no record refers to (purged experiments' files, failed uploads).

    Files shared with any other experiment, in the trash too, are kept, and so are files
    uploads wrote or found in the last 10 minutes. Safe while the server runs.
    Example: labledger db gc
    """
    from labledger.server.file_gc import collect_files
    from labledger.server.lab import result_store
    from labledger.settings import load_settings
    from labledger.storage.engine import create_db_engine

    settings = load_settings(db_url=db_url)
    engine = create_db_engine(settings.database_url)
    try:
        done = collect_files(engine, result_store(settings))
    finally:
        engine.dispose()
    click.echo(
        f"Removed {done.removed} result files no record refers to, freed "
        f"{done.freed / 1e6:.1f} MB (kept {done.kept_recent} used in the last 10 minutes)."
    )


@db.command()
@_DB_URL
@click.argument("backup_file", metavar="BACKUP", type=click.Path(path_type=Path, exists=True))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def restore(db_url: str | None, backup_file: Path, yes: bool) -> None:
    """Replace the database's content and add the result files of BACKUP. Stop the server first.

    BACKUP is a folder made by `labledger db backup` (or a database file alone).
    Example: labledger db restore backups/labledger-20261121T101010123456Z --yes
    """
    from labledger.server.backup import restore_backup
    from labledger.settings import load_settings

    settings = load_settings(db_url=db_url)
    if not yes:
        click.confirm(
            f"Replace the content of {settings.public()['db_url']} and add the result files "
            f"to {settings.results_path}?",
            abort=True,
        )
    summary = restore_backup(settings, backup_file)
    click.echo(f"Restored {summary.describe()}")
