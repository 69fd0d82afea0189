"""The search and count revision: upgrading a database with experiments indexes their text
and counts the live ones; downgrading removes both and keeps the data."""

from __future__ import annotations

from sqlalchemy import inspect

from labledger.core.models import ExperimentQuery
from labledger.storage.engine import create_db_engine
from labledger.storage.sql import SqlStore
from labledger_fixtures import migrate

PREVIOUS = "0005"


CAMPAIGN = "01JAAAAAAAAAAAAAAAAAAAAAC1"


def _insert(engine: object, id_: str, name: str, deleted: str) -> None:
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql(
            "INSERT INTO experiments (id, status, name, run_name, campaign_id, ownership, "
            "parameters, metadata, priority, attempts, version, created_at, updated_at, "
            f"deleted_at) VALUES ('{id_}', 'completed', '{name}', 'run of {name}', "
            f"'{CAMPAIGN}', '{{}}', '{{}}', '{{}}', 0, 0, 1, "
            f"'2026-01-01 00:00:00', '2026-01-01 00:00:00', {deleted})"
        )


def _insert_campaign(engine: object) -> None:
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql(
            "INSERT INTO campaigns (id, name, status, ownership, parameters, metadata, "
            "declared_experiment_ids, version, created_at, updated_at) VALUES "
            f"('{CAMPAIGN}', 'old', 'active', '{{}}', '{{}}', '{{}}', '[]', 1, "
            "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )


def test_upgrade_indexes_and_counts_existing_experiments(db_url: str) -> None:
    engine = create_db_engine(db_url)
    try:
        migrate(engine, PREVIOUS)
        _insert_campaign(engine)
        _insert(engine, "01JAAAAAAAAAAAAAAAAAAAAAA1", "Xylophone tuning", "NULL")
        _insert(engine, "01JAAAAAAAAAAAAAAAAAAAAAA2", "Xylophone repair", "'2026-01-02 00:00:00'")
        _insert(engine, "01JAAAAAAAAAAAAAAAAAAAAAA3", "Oboe", "NULL")
        migrate(engine, "head")
        with engine.connect() as conn:
            assert "experiment_counts" in inspect(conn).get_table_names()
            if engine.dialect.name == "sqlite":
                assert "experiments_text" in inspect(conn).get_table_names()
            else:
                indexes = conn.exec_driver_sql(
                    "SELECT indexname FROM pg_indexes WHERE tablename = 'experiments'"
                ).scalars()
                assert "ix_experiments_text_trgm" in set(indexes)
        store = SqlStore(engine)
        assert store.experiments.count() == 2
        campaign = store.campaigns.get(CAMPAIGN)
        assert campaign.experiment_count == 2
        assert campaign.experiment_ids == [
            "01JAAAAAAAAAAAAAAAAAAAAAA1",
            "01JAAAAAAAAAAAAAAAAAAAAAA3",
        ]
        found = store.experiments.find(ExperimentQuery(text="ylophon"))
        assert [e.experiment_id for e in found] == ["01JAAAAAAAAAAAAAAAAAAAAAA1"]
        trashed = store.experiments.find(ExperimentQuery(text="ylophon", deleted=True))
        assert [e.experiment_id for e in trashed] == ["01JAAAAAAAAAAAAAAAAAAAAAA2"]
        migrate(engine, PREVIOUS, down=True)
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            names = conn.exec_driver_sql("SELECT name FROM experiments ORDER BY id").scalars()
            assert list(names) == ["Xylophone tuning", "Xylophone repair", "Oboe"]
        assert "experiment_counts" not in tables and "experiments_text" not in tables
        _insert(engine, "01JAAAAAAAAAAAAAAAAAAAAAA4", "after the downgrade", "NULL")
        migrate(engine, "head")
        assert SqlStore(engine).experiments.count() == 3
        assert SqlStore(engine).campaigns.get(CAMPAIGN).experiment_count == 3
    finally:
        engine.dispose()
