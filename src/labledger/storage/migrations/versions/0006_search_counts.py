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
- ``ix_experiments_campaign_created`` also holds ``deleted_at``: a campaign's live
  experiment ids and their count are read from the index alone.

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
    else:
        bind.exec_driver_sql("DROP INDEX IF EXISTS ix_experiments_text_trgm")
        for name in ("count_insert", "count_delete", "count_trash"):
            bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS experiments_{name} ON experiments")
        bind.exec_driver_sql("DROP FUNCTION IF EXISTS experiments_count_inserted()")
        bind.exec_driver_sql("DROP FUNCTION IF EXISTS experiments_count_changed()")
    op.drop_index("ix_experiments_campaign_created", table_name="experiments")
    op.create_index(
        "ix_experiments_campaign_created", "experiments", ["campaign_id", "created_at", "id"]
    )
    op.drop_table("experiment_counts")
