"""Schema versions: initialise an empty database, refuse an outdated one, upgrade, back up, restore.

The schema version is Alembic's revision, recorded in the ``alembic_version`` table.
SQLite backups use SQLite's online backup API (consistent while the server runs); PostgreSQL
backups use ``pg_dump --format=custom`` and ``pg_restore --clean``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url

from labledger.errors import (
    InvalidInput,
    LabledgerError,
    SchemaOutdated,
    SchemaTooNew,
    StorageError,
)
from labledger.storage.engine import WRITE, create_db_engine, is_sqlite, sqlite_path

__all__ = [
    "SchemaState",
    "backup",
    "check",
    "ensure_ready",
    "head_revision",
    "refuse_newer",
    "restore",
    "upgrade",
    "upgrade_command",
]

_MIGRATIONS = Path(__file__).with_name("migrations")
PG_BIN_DIRS = (
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
)


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def head_revision() -> str:
    """The schema version this labledger needs."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


@dataclass(frozen=True)
class SchemaState:
    """What ``labledger db check`` reports."""

    current: str | None
    head: str
    empty: bool

    @property
    def up_to_date(self) -> bool:
        """True when the database is at the version this labledger needs."""
        return self.current == self.head


def check(engine: Engine) -> SchemaState:
    """The schema version of the database behind ``engine``."""
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            tables = set(inspect(conn).get_table_names())
    except Exception as exc:
        raise StorageError(f"cannot read the database schema: {exc}") from exc
    return SchemaState(current=current, head=head_revision(), empty=not tables)


def upgrade_command(url: str) -> str:
    """A command that brings the database at ``url`` to the current schema when pasted.

    A URL holding a password is not echoed (logs would keep it, and a masked one cannot
    work): the command reads it from ``EXPERIMENT_DB_URL``, and the shell refuses to run it
    when that is unset, rather than upgrading the default database instead.
    """
    parsed = make_url(url)
    if parsed.password is None:
        return f"labledger db upgrade --db-url {shlex.quote(url)}"
    where = parsed._replace(password=None).render_as_string(hide_password=False)
    return (
        'labledger db upgrade --db-url "${EXPERIMENT_DB_URL:?set EXPERIMENT_DB_URL to the URL '
        f'of {where} with its password}}"'
    )


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(_config()).get_revision(revision) is not None
    except Exception:  # alembic raises its own errors for a revision it has never heard of
        return False


def refuse_newer(state: SchemaState) -> None:
    """Raise :class:`SchemaTooNew` when a newer labledger wrote the database."""
    if state.current is not None and not _known(state.current):
        raise SchemaTooNew(state.current, state.head)


def ensure_ready(engine: Engine, url: str) -> SchemaState:
    """Initialise an empty database; refuse (``SchemaOutdated``) one at another version."""
    state = check(engine)
    if state.empty:
        _run_upgrade(engine, "head")
        return check(engine)
    if not state.up_to_date:
        refuse_newer(state)
        raise SchemaOutdated(state.current, state.head, upgrade_command(url))
    return state


def _run_upgrade(engine: Engine, target: str) -> None:
    cfg = _config()
    with engine.connect().execution_options(**WRITE) as conn, conn.begin():
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)


def upgrade(url: str, *, backup_dir: Path, target: str = "head") -> tuple[SchemaState, Path | None]:
    """Back up, then migrate to ``target``; restore the backup if the migration fails.

    Returns the new state and the backup file (None when the database was empty).
    """
    engine = create_db_engine(url)
    try:
        before = check(engine)
        refuse_newer(before)
        backup_file = None if before.empty else backup(url, backup_dir, engine=engine)
        try:
            _run_upgrade(engine, target)
        except Exception as exc:
            if backup_file is not None:
                engine.dispose()
                restore(url, backup_file)
            raise StorageError(
                f"migration to {target} failed and the database was restored from "
                f"{backup_file}: {exc}"
                if backup_file
                else f"migration to {target} failed: {exc}"
            ) from exc
        return check(engine), backup_file
    finally:
        engine.dispose()


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def backup(url: str, backup_dir: Path, *, engine: Engine | None = None) -> Path:
    """Write a consistent copy of the database into ``backup_dir``; returns the file."""
    backup_dir.mkdir(parents=True, exist_ok=True)
    if is_sqlite(url):
        source = sqlite_path(url)
        if source is None:
            raise InvalidInput("db_url: an in-memory SQLite database cannot be backed up")
        if not source.exists():
            raise StorageError(f"no database file at {source}")
        target = backup_dir / f"{source.stem}-{_stamp()}.sqlite3"
        partial = target.with_suffix(".partial")
        with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(partial)) as dst:
            src.backup(dst)
        os.replace(partial, target)
        return target
    database = make_url(url).database or "postgres"
    target = backup_dir / f"{database}-{_stamp()}.pgdump"
    _pg_tool("pg_dump", ["--format=custom", f"--file={target}", _libpq_url(url)])
    return target


def restore(url: str, backup_file: Path) -> None:
    """Replace the database's content with ``backup_file`` (made by :func:`backup`)."""
    if not backup_file.is_file():
        raise InvalidInput(f"backup: no file at {backup_file}", field="backup")
    if is_sqlite(url):
        target = sqlite_path(url)
        if target is None:
            raise InvalidInput("db_url: an in-memory SQLite database cannot be restored")
        target.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(backup_file)) as src, closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
        return
    _pg_tool(
        "pg_restore",
        [
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "-d",
            _libpq_url(url),
            str(backup_file),
        ],
    )


def _libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _pg_tool(name: str, args: list[str]) -> None:
    exe = shutil.which(name) or next(
        (str(Path(d) / name) for d in PG_BIN_DIRS if (Path(d) / name).exists()), None
    )
    if exe is None:
        raise LabledgerError(
            f"{name} is needed to back up or restore PostgreSQL; install the PostgreSQL client "
            "tools (Debian: apt-get install postgresql-client)"
        )
    proc = subprocess.run([exe, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StorageError(f"{name} failed ({proc.returncode}): {proc.stderr.strip()}")
