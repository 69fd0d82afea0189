"""Revision 0002 (queue leases, results, milestones, resource uses, forwarding cursors)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select

from labledger.storage import schema
from labledger.storage.engine import WRITE, create_db_engine
from labledger.storage.tables import described, experiments, metadata


def _config(conn: object) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(schema.__file__).with_name("migrations")))
    cfg.attributes["connection"] = conn
    return cfg


def test_migrations_create_exactly_the_tables_of_tables_py(db_url: str) -> None:
    engine = create_db_engine(db_url)
    try:
        schema.ensure_ready(engine, db_url)
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"include_name": lambda name, *_: described(name)}
            )
            diff = compare_metadata(context, metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_upgrade_from_0001_keeps_experiments_and_adds_empty_lease_fields(db_url: str) -> None:
    engine = create_db_engine(db_url)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        with engine.connect().execution_options(**WRITE) as conn, conn.begin():
            command.upgrade(_config(conn), "0001")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO experiments (id, status, name, ownership, parameters, metadata, "
                "priority, attempts, version, created_at, updated_at) VALUES "
                "('01JAAAAAAAAAAAAAAAAAAAAAAA', 'queued', 'old', '{}', '{}', '{}', 0, 0, 1, "
                f"'{now.isoformat(sep=' ')[:19]}', '{now.isoformat(sep=' ')[:19]}')"
            )
        with engine.connect().execution_options(**WRITE) as conn, conn.begin():
            command.upgrade(_config(conn), "0002")
        with engine.connect() as conn:
            row = conn.execute(select(experiments)).one()
            tables = set(inspect(conn).get_table_names())
        assert row.name == "old"
        assert (row.worker_id, row.claimed_at, row.lease_expires_at) == (None, None, None)
        assert {"results", "milestones", "resource_uses", "forward_cursors"} <= tables
        with engine.connect().execution_options(**WRITE) as conn, conn.begin():
            command.downgrade(_config(conn), "0001")
        with engine.connect() as conn:
            assert "results" not in set(inspect(conn).get_table_names())
            assert "worker_id" not in {c["name"] for c in inspect(conn).get_columns("experiments")}
            assert conn.execute(select(experiments.c.id)).scalar_one() == (
                "01JAAAAAAAAAAAAAAAAAAAAAAA"
            )
    finally:
        engine.dispose()


def test_insert_with_lease_columns_round_trips(sqlite_url: str) -> None:
    engine = create_db_engine(sqlite_url)
    try:
        schema.ensure_ready(engine, sqlite_url)
        lease = datetime(2026, 1, 1, 12, tzinfo=UTC)
        with engine.begin() as conn:
            conn.execute(
                insert(experiments).values(
                    id="01JAAAAAAAAAAAAAAAAAAAAAAB",
                    status="in_progress",
                    name="n",
                    ownership={},
                    parameters={},
                    metadata={},
                    priority=0,
                    attempts=1,
                    version=1,
                    created_at=lease,
                    updated_at=lease,
                    worker_id="w1",
                    lease_expires_at=lease,
                )
            )
            row = conn.execute(select(experiments)).one()
        assert (row.worker_id, row.lease_expires_at) == ("w1", lease)
    finally:
        engine.dispose()
