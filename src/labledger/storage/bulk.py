"""New rows in bulk: many rows of a table in one statement, on SQLite straight through the
driver with SQLAlchemy's own conversion of each value.

SQLAlchemy's per-statement work (compiling or looking up the statement, the connection's event
hooks, result setup) costs several times what SQLite itself takes to store a new experiment.
Here a SQLite write transaction runs on the pool's driver connection: ``BEGIN IMMEDIATE``, one
multi-row ``INSERT`` per table, ``COMMIT``. Values are converted by each column type's bind
processor (``TypeEngine.bind_processor``), so they are stored exactly as SQLAlchemy stores them.
Other databases go through SQLAlchemy as usual.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Dialect, Engine, Table, insert
from sqlalchemy.engine.interfaces import DBAPICursor
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from labledger.errors import StorageError
from labledger.storage.engine import write_lock, write_transaction

__all__ = ["Rows", "insert_all"]

#: rows for one table: the table and its rows as column -> value (all with the same keys)
Rows = tuple[Table, Sequence[dict[str, Any]]]

#: SQLite's smallest limit on the parameters of one statement (before 3.32)
_SQLITE_PARAMETERS = 999


def insert_all(engine: Engine, batches: Sequence[Rows]) -> None:
    """Insert every table's rows, all in one transaction (raises on any failure, storing
    nothing)."""
    if engine.dialect.name != "sqlite":
        with write_transaction(engine) as conn:
            for table, rows in batches:
                if rows:
                    conn.execute(insert(table), list(rows))
        return
    with _sqlite_write(engine) as cursor:
        for table, rows in batches:
            _sqlite_insert(cursor, engine.dialect, table, rows)


@contextmanager
def _sqlite_write(engine: Engine) -> Iterator[DBAPICursor]:
    """A write transaction on the pool's driver connection, under the engine's write lock."""
    try:
        with write_lock(engine):
            raw = engine.raw_connection()
            try:
                cursor = raw.cursor()
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    yield cursor
                    cursor.execute("COMMIT")
                except BaseException:
                    if raw.driver_connection.in_transaction:  # type: ignore[union-attr]
                        cursor.execute("ROLLBACK")
                    raise
                finally:
                    cursor.close()
            finally:
                raw.close()
    except sqlite3.IntegrityError as exc:
        raise SAIntegrityError(None, None, exc) from exc
    except sqlite3.Error as exc:
        raise StorageError(f"database error: {exc}") from exc


@lru_cache(maxsize=64)
def _plan(table: Table, columns: tuple[str, ...], dialect: Dialect) -> tuple[str, str, list[Any]]:
    """The head of the INSERT, one VALUES group, and each column's conversion with whether it
    leaves None alone."""
    prep = dialect.identifier_preparer
    names = ", ".join(prep.quote(c) for c in columns)
    head = f"INSERT INTO {prep.format_table(table)} ({names}) VALUES "
    group = "(" + ", ".join("?" * len(columns)) + ")"
    processors = []
    for column in columns:
        process = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
        # a type that stores None as NULL needs no call for it (JSON stores it as 'null')
        processors.append((process, process is not None and process(None) is None))
    return head, group, processors


def _sqlite_insert(
    cursor: DBAPICursor, dialect: Dialect, table: Table, rows: Sequence[dict[str, Any]]
) -> None:
    if not rows:
        return
    columns = tuple(rows[0])
    head, group, processors = _plan(table, columns, dialect)
    per_statement = max(1, _SQLITE_PARAMETERS // len(columns))
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        params: list[Any] = []
        for row in chunk:
            for name, (process, none_is_null) in zip(columns, processors, strict=True):
                value = row[name]
                if process is None or (value is None and none_is_null):
                    params.append(value)
                else:
                    params.append(process(value))
        cursor.execute(head + ", ".join([group] * len(chunk)), params)
