"""Indexed text search, a maintained count of live experiments, campaign ids from an index.

- SQLite: ``experiments_text``, an FTS5 table with the trigram tokenizer over the name, run
  name and run description of every experiment (external content: the text stays in
  ``experiments``; triggers keep the index in step). PostgreSQL: a pg_trgm GIN index over the
  same three columns joined. Either only narrows the rows that the text filter's own
  condition then checks, so the filter matches exactly what it matched before. Where the
  database lacks them (SQLite before 3.34, no pg_trgm) nothing is created and the filter
  scans as before.
- ``experiment_counts``: the number of experiments not in the trash, kept by triggers in the
  same transaction as every insert, purge, trash and restore (one row on SQLite; sixteen on
  PostgreSQL, one per group of connections, so concurrent inserts do not queue on one row).
- ``campaign_counts``: the same per campaign (its live linked experiments), kept by triggers
  too, so a page of campaigns gets its sizes without counting their experiments.
- ``ix_experiments_campaign_created`` also holds ``deleted_at``: a campaign's live
  experiment ids are read from the index alone.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import DBAPIError

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PG_SHARDS = 16

_SQLITE_SEARCH = [
    "CREATE VIRTUAL TABLE experiments_text USING fts5("
    "name, run_name, run_description, content='experiments', tokenize='trigram')",
    "CREATE TRIGGER experiments_text_insert AFTER INSERT ON experiments BEGIN "
    "INSERT INTO experiments_text(rowid, name, run_name, run_description) "
    "VALUES (NEW.rowid, NEW.name, NEW.run_name, NEW.run_description); END",
    "CREATE TRIGGER experiments_text_delete AFTER DELETE ON experiments BEGIN "
    "INSERT INTO experiments_text(experiments_text, rowid, name, run_name, run_description) "
    "VALUES ('delete', OLD.rowid, OLD.name, OLD.run_name, OLD.run_description); END",
    "CREATE TRIGGER experiments_text_update "
    "AFTER UPDATE OF name, run_name, run_description ON experiments BEGIN "
    "INSERT INTO experiments_text(experiments_text, rowid, name, run_name, run_description) "
    "VALUES ('delete', OLD.rowid, OLD.name, OLD.run_name, OLD.run_description); "
    "INSERT INTO experiments_text(rowid, name, run_name, run_description) "
    "VALUES (NEW.rowid, NEW.name, NEW.run_name, NEW.run_description); END",
    "INSERT INTO experiments_text(experiments_text) VALUES ('rebuild')",
]


def _sqlite_campaign_count(campaign: str, delta: int, when: str) -> str:
    return (
        f"INSERT INTO campaign_counts (campaign_id, shard, live) SELECT {campaign}, 0, {delta} "
        f"WHERE {when} ON CONFLICT (campaign_id, shard) DO UPDATE SET live = live + {delta}"
    )


_NEW_LINKED = "NEW.campaign_id IS NOT NULL AND NEW.deleted_at IS NULL"
_OLD_LINKED = "OLD.campaign_id IS NOT NULL AND OLD.deleted_at IS NULL"
_RELINKED = (
    "OLD.campaign_id IS NOT NEW.campaign_id OR (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL)"
)

_SQLITE_COUNTS = [
    "CREATE TRIGGER experiments_count_insert AFTER INSERT ON experiments "
    "WHEN NEW.deleted_at IS NULL BEGIN "
    "UPDATE experiment_counts SET live = live + 1 WHERE shard = 0; END",
    "CREATE TRIGGER experiments_count_delete AFTER DELETE ON experiments "
    "WHEN OLD.deleted_at IS NULL BEGIN "
    "UPDATE experiment_counts SET live = live - 1 WHERE shard = 0; END",
    "CREATE TRIGGER experiments_count_trash AFTER UPDATE OF deleted_at ON experiments "
    "WHEN (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL) BEGIN "
    "UPDATE experiment_counts SET live = live + "
    "(CASE WHEN NEW.deleted_at IS NULL THEN 1 ELSE -1 END) WHERE shard = 0; END",
    f"CREATE TRIGGER campaign_count_insert AFTER INSERT ON experiments WHEN {_NEW_LINKED} "
    f"BEGIN {_sqlite_campaign_count('NEW.campaign_id', 1, 'true')}; END",
    f"CREATE TRIGGER campaign_count_delete AFTER DELETE ON experiments WHEN {_OLD_LINKED} "
    f"BEGIN {_sqlite_campaign_count('OLD.campaign_id', -1, 'true')}; END",
    "CREATE TRIGGER campaign_count_update AFTER UPDATE OF campaign_id, deleted_at ON experiments "
    f"WHEN {_RELINKED} BEGIN "
    f"{_sqlite_campaign_count('OLD.campaign_id', -1, _OLD_LINKED)}; "
    f"{_sqlite_campaign_count('NEW.campaign_id', 1, _NEW_LINKED)}; END",
]

# The shard is the connection's: a transaction only ever changes its own connection's row, so
# two transactions never wait on each other's rows in opposite orders.
_PG_COUNTS = [
    f"""
    CREATE FUNCTION experiments_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE delta bigint;
    BEGIN
      SELECT count(*) INTO delta FROM inserted_rows WHERE deleted_at IS NULL;
      IF delta <> 0 THEN
        UPDATE experiment_counts SET live = live + delta
        WHERE shard = mod(pg_backend_pid(), {PG_SHARDS});
      END IF;
      RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION experiments_count_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE experiment_counts
      SET live = live + (CASE WHEN TG_OP = 'DELETE' OR NEW.deleted_at IS NOT NULL
                              THEN -1 ELSE 1 END)
      WHERE shard = mod(pg_backend_pid(), {PG_SHARDS});
      RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION campaign_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO campaign_counts (campaign_id, shard, live)
      SELECT campaign_id, mod(pg_backend_pid(), {PG_SHARDS}), count(*) FROM inserted_rows
      WHERE campaign_id IS NOT NULL AND deleted_at IS NULL
      GROUP BY campaign_id ORDER BY campaign_id
      ON CONFLICT (campaign_id, shard) DO UPDATE SET live = campaign_counts.live + EXCLUDED.live;
      RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION campaign_count_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF {_OLD_LINKED} THEN
        INSERT INTO campaign_counts (campaign_id, shard, live)
        VALUES (OLD.campaign_id, mod(pg_backend_pid(), {PG_SHARDS}), -1)
        ON CONFLICT (campaign_id, shard) DO UPDATE SET live = campaign_counts.live - 1;
      END IF;
      IF TG_OP = 'UPDATE' THEN
        IF {_NEW_LINKED} THEN
          INSERT INTO campaign_counts (campaign_id, shard, live)
          VALUES (NEW.campaign_id, mod(pg_backend_pid(), {PG_SHARDS}), 1)
          ON CONFLICT (campaign_id, shard) DO UPDATE SET live = campaign_counts.live + 1;
        END IF;
      END IF;
      RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER campaign_count_insert AFTER INSERT ON experiments "
    "REFERENCING NEW TABLE AS inserted_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION campaign_count_inserted()",
    "CREATE TRIGGER campaign_count_delete AFTER DELETE ON experiments "
    f"FOR EACH ROW WHEN ({_OLD_LINKED}) EXECUTE FUNCTION campaign_count_changed()",
    "CREATE TRIGGER campaign_count_update AFTER UPDATE OF campaign_id, deleted_at ON experiments "
    f"FOR EACH ROW WHEN ({_RELINKED.replace('IS NOT', 'IS DISTINCT FROM')}) "
    "EXECUTE FUNCTION campaign_count_changed()",
    "CREATE TRIGGER experiments_count_insert AFTER INSERT ON experiments "
    "REFERENCING NEW TABLE AS inserted_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION experiments_count_inserted()",
    "CREATE TRIGGER experiments_count_delete AFTER DELETE ON experiments "
    "FOR EACH ROW WHEN (OLD.deleted_at IS NULL) EXECUTE FUNCTION experiments_count_changed()",
    "CREATE TRIGGER experiments_count_trash AFTER UPDATE OF deleted_at ON experiments "
    "FOR EACH ROW WHEN ((OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL)) "
    "EXECUTE FUNCTION experiments_count_changed()",
]

_PG_SEARCH = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX ix_experiments_text_trgm ON experiments USING gin "
    "((name || ' ' || coalesce(run_name, '') || ' ' || coalesce(run_description, '')) "
    "gin_trgm_ops)",
]


def upgrade() -> None:
    op.create_table(
        "experiment_counts",
        sa.Column("shard", sa.Integer, nullable=False),
        sa.Column("live", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("shard", name="pk_experiment_counts"),
    )
    op.create_table(
        "campaign_counts",
        sa.Column("campaign_id", sa.String(26), nullable=False),
        sa.Column("shard", sa.Integer, nullable=False),
        sa.Column("live", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("campaign_id", "shard", name="pk_campaign_counts"),
    )
    op.drop_index("ix_experiments_campaign_created", table_name="experiments")
    op.create_index(
        "ix_experiments_campaign_created",
        "experiments",
        ["campaign_id", "created_at", "id", "deleted_at"],
    )
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    for shard in range(1 if sqlite else PG_SHARDS):
        bind.exec_driver_sql(f"INSERT INTO experiment_counts (shard, live) VALUES ({shard}, 0)")
    bind.exec_driver_sql(
        "UPDATE experiment_counts SET live = "
        "(SELECT count(*) FROM experiments WHERE deleted_at IS NULL) WHERE shard = 0"
    )
    bind.exec_driver_sql(
        "INSERT INTO campaign_counts (campaign_id, shard, live) "
        "SELECT campaign_id, 0, count(*) FROM experiments "
        "WHERE campaign_id IS NOT NULL AND deleted_at IS NULL GROUP BY campaign_id"
    )
    for statement in _SQLITE_COUNTS if sqlite else _PG_COUNTS:
        bind.exec_driver_sql(statement)
    _optional(bind, _SQLITE_SEARCH if sqlite else _PG_SEARCH)


def _optional(bind: sa.Connection, statements: list[str]) -> None:
    """Run ``statements`` if this database can (FTS5 trigrams, pg_trgm); else leave it out."""
    with bind.begin_nested() as savepoint:
        try:
            for statement in statements:
                bind.exec_driver_sql(statement)
        except DBAPIError:
            savepoint.rollback()


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("text_insert", "text_delete", "text_update"):
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS experiments_{name}")
        bind.exec_driver_sql("DROP TABLE IF EXISTS experiments_text")
        for name in ("count_insert", "count_delete", "count_trash"):
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS experiments_{name}")
        for name in ("insert", "delete", "update"):
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS campaign_count_{name}")
    else:
        bind.exec_driver_sql("DROP INDEX IF EXISTS ix_experiments_text_trgm")
        for name in ("count_insert", "count_delete", "count_trash"):
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS experiments_{name} ON experiments")
        bind.exec_driver_sql("DROP FUNCTION IF EXISTS experiments_count_inserted()")
        bind.exec_driver_sql("DROP FUNCTION IF EXISTS experiments_count_changed()")
        for name in ("insert", "delete", "update"):
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS campaign_count_{name} ON experiments")
        bind.exec_driver_sql("DROP FUNCTION IF EXISTS campaign_count_inserted()")
        bind.exec_driver_sql("DROP FUNCTION IF EXISTS campaign_count_changed()")
    op.drop_index("ix_experiments_campaign_created", table_name="experiments")
    op.create_index(
        "ix_experiments_campaign_created", "experiments", ["campaign_id", "created_at", "id"]
    )
    op.drop_table("campaign_counts")
    op.drop_table("experiment_counts")
