"""A whole backup of a labledger service: the database and the result files, and what it holds.

A backup is a folder ``labledger-<time>/`` holding::

    backup.json          what is in it: database kind, schema version, files and bytes
    database.sqlite3     SQLite's online backup (or database.pgdump: pg_dump --format=custom)
    files/objects/...    every result file and pushed blob, by content digest, copied out of
                         the result store (the local folder, or the S3 store ``blob_url``)

The database is copied first, then the files: files are written before the rows that refer to
them and never change, so every file the copied database refers to is in the backup.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from labledger.archive.results import back_up_files, restore_files
from labledger.errors import InvalidInput
from labledger.server.lab import result_store
from labledger.settings import Settings
from labledger.storage import schema
from labledger.storage.engine import create_db_engine, is_sqlite

__all__ = ["BACKUP_FILE", "BackupSummary", "make_backup", "restore_backup"]

#: the file in a backup folder that says what it holds
BACKUP_FILE = "backup.json"


@dataclass(frozen=True)
class BackupSummary:
    """What a backup holds (read from, or written to, its ``backup.json``)."""

    path: Path
    database: str
    schema: str | None
    files: int
    size: int
    store: str | None = None

    def describe(self) -> str:
        """One line for the terminal."""
        source = f"; result store {self.store}" if self.store else ""
        return (
            f"{self.path}: the {self.database} database (schema {self.schema or 'none'}) and "
            f"{self.files} result files ({self.size / 1e6:.1f} MB){source}"
        )


def make_backup(settings: Settings, backup_dir: Path) -> BackupSummary:
    """Back up the database and the result files of ``settings`` into a new folder."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = backup_dir / f"labledger-{stamp}"
    partial = backup_dir / f".labledger-{stamp}.partial"
    partial.mkdir(parents=True)
    url = settings.database_url
    engine = create_db_engine(url)
    try:
        current = schema.check(engine).current
    finally:
        engine.dispose()
    dumped = schema.backup(url, partial, engine=None)
    database = partial / ("database.sqlite3" if is_sqlite(url) else "database.pgdump")
    os.replace(dumped, database)
    store = result_store(settings)
    copied = back_up_files(store, partial / "files")
    kind = "SQLite" if is_sqlite(url) else "PostgreSQL"
    about: dict[str, Any] = {
        "format": 1,
        "created_at": datetime.now(UTC).isoformat(),
        "labledger_version": version("labledger"),
        "database": {"kind": kind, "file": database.name, "schema": current},
        "files": {
            "count": copied.count,
            "bytes": copied.size,
            "folder": "files",
            "store": store.location,
        },
    }
    (partial / BACKUP_FILE).write_text(json.dumps(about, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, target)
    return BackupSummary(target, kind, current, copied.count, copied.size, store.location)


def read_backup(path: Path) -> dict[str, Any]:
    """The ``backup.json`` of the backup folder ``path``."""
    try:
        about: dict[str, Any] = json.loads((path / BACKUP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"backup: {path} is not a labledger backup folder (no readable {BACKUP_FILE}: {exc})",
            field="backup",
        ) from exc
    return about


def restore_backup(settings: Settings, path: Path) -> BackupSummary:
    """Restore the database and the result files of the backup at ``path``.

    ``path`` is a backup folder, or a database file alone (backups made before files were
    included, and the ones ``db upgrade`` makes).
    """
    url = settings.database_url
    if path.is_file():
        schema.restore(url, path)
        return BackupSummary(path, "SQLite" if is_sqlite(url) else "PostgreSQL", None, 0, 0)
    about = read_backup(path)
    database = about["database"]
    wanted = "SQLite" if is_sqlite(url) else "PostgreSQL"
    if database["kind"] != wanted:
        raise InvalidInput(
            f"backup: {path} holds a {database['kind']} database, and the database to restore "
            f"into is {wanted}; set EXPERIMENT_DB_URL (or --db-url) to a {database['kind']} one",
            field="backup",
        )
    schema.restore(url, path / database["file"])
    store = result_store(settings)
    copied = restore_files(path / about["files"]["folder"], store)
    return BackupSummary(
        path, database["kind"], database["schema"], copied.count, copied.size, store.location
    )
