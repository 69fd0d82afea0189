"""Revision 0003 (API tokens, idempotency keys): upgrade from 0002 keeps the data, and a server
on a 0002 database refuses to start with the command that upgrades it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from labledger.errors import SchemaOutdated
from labledger.server.app import create_app
from labledger.settings import Settings
from labledger.storage.access_sql import TokenStore
from labledger.storage.engine import create_db_engine
from labledger_fixtures import migrate

NEW_TABLES = {"api_tokens", "idempotency_keys"}


def _tables(engine: object) -> set[str]:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return set(inspect(conn).get_table_names())


def test_upgrade_from_0002_adds_the_tables_and_keeps_the_data(db_url: str, tmp_path: Path) -> None:
    engine = create_db_engine(db_url)
    try:
        migrate(engine, "0002")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO experiments (id, status, name, ownership, parameters, metadata, "
                "priority, attempts, version, created_at, updated_at) VALUES "
                "('01JAAAAAAAAAAAAAAAAAAAAAAA', 'queued', 'kept', '{}', '{}', '{}', 0, 0, 1, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        assert not NEW_TABLES & _tables(engine)
        with pytest.raises(SchemaOutdated) as refused:
            create_app(Settings(db_url=db_url, data_dir=tmp_path), engine=engine)
        assert "labledger db upgrade" in refused.value.message
        migrate(engine, "0003")
        assert _tables(engine) >= NEW_TABLES
        TokenStore(engine).create("after-upgrade", "admin")
        with engine.connect() as conn:
            names = conn.exec_driver_sql("SELECT name FROM experiments").scalars().all()
        assert names == ["kept"]
        migrate(engine, "0002", down=True)
        assert not NEW_TABLES & _tables(engine)
    finally:
        engine.dispose()
