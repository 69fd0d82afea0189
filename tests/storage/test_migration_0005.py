"""The metric series revision: upgrading a database of the previous revision keeps its data,
adds the tables, and downgrading removes them again."""

from __future__ import annotations

from sqlalchemy import inspect

from labledger.core.metrics import MetricPointIn
from labledger.storage.engine import create_db_engine
from labledger.storage.metrics_sql import MetricSqlStore
from labledger_fixtures import migrate as _migrate

NEW_TABLES = {"metric_series", "metric_points", "metric_blocks"}
PREVIOUS = "0004"


def _tables(engine: object) -> set[str]:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return set(inspect(conn).get_table_names())


def test_upgrade_adds_metric_tables_and_keeps_the_data(db_url: str) -> None:
    engine = create_db_engine(db_url)
    try:
        _migrate(engine, PREVIOUS)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO experiments (id, status, name, ownership, parameters, metadata, "
                "priority, attempts, version, created_at, updated_at) VALUES "
                "('01JAAAAAAAAAAAAAAAAAAAAAAA', 'in_progress', 'kept', '{}', '{}', '{}', 0, 0, 1, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        assert not NEW_TABLES & _tables(engine)
        _migrate(engine, "head")
        assert _tables(engine) >= NEW_TABLES
        store = MetricSqlStore(engine)
        point = MetricPointIn(name="loss", value=0.5, step=3)
        store.add_points("01JAAAAAAAAAAAAAAAAAAAAAAA", [point], 0.0)
        assert store.list_series("01JAAAAAAAAAAAAAAAAAAAAAAA")[0].last_value == 0.5
        _migrate(engine, PREVIOUS, down=True)
        assert not NEW_TABLES & _tables(engine)
        with engine.connect() as conn:
            names = conn.exec_driver_sql("SELECT name FROM experiments").scalars().all()
        assert names == ["kept"]
    finally:
        engine.dispose()
