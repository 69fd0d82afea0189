"""The database schema as SQLAlchemy Core tables (SQLite and PostgreSQL).

Alembic migrations in ``migrations/versions`` create exactly these tables; a test compares the
two. Timestamps are stored as UTC and come back timezone-aware (:class:`UTCDateTime`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

__all__ = [
    "SEARCH_OBJECTS",
    "JSONType",
    "UTCDateTime",
    "api_tokens",
    "campaign_counts",
    "campaigns",
    "described",
    "events",
    "experiment_counts",
    "experiments",
    "forward_cursors",
    "idempotency_keys",
    "metadata",
    "metric_blocks",
    "metric_points",
    "metric_series",
    "milestones",
    "resource_uses",
    "results",
]


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored as UTC and always read back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} cannot be stored; give a time zone")
        value = value.astimezone(UTC)
        # SQLite has no time zone type: store naive UTC, whose text sorts in time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType: Any = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    }
)

ID = String(26)

experiments = Table(
    "experiments",
    metadata,
    Column("id", ID, primary_key=True),
    Column("status", String(16), nullable=False),
    Column("name", String(1000), nullable=False, doc="the design's experiment_name"),
    Column("run_name", String(1000)),
    Column("run_description", Text),
    Column("campaign_id", ID),
    Column("owner", ID, doc="ownership_info.user_id"),
    Column("design", JSONType),
    Column("ownership", JSONType, nullable=False),
    Column("parameters", JSONType, nullable=False),
    Column("metadata", JSONType, nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("not_before", UTCDateTime),
    Column("progress", Float),
    Column("attempts", Integer, nullable=False, default=0),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("deleted_at", UTCDateTime),
    # the queue: who holds a claimed experiment, since when, until when
    Column("worker_id", String(200)),
    Column("claimed_at", UTCDateTime),
    Column("lease_expires_at", UTCDateTime),
    # "latest N" and every filter below walk an index in ORDER BY order, so their cost does not
    # grow with the table.
    Index("ix_experiments_created", "created_at", "id"),
    Index("ix_experiments_status_created", "status", "created_at", "id"),
    # deleted_at too: a campaign's live experiment ids and their count come from the index alone
    Index("ix_experiments_campaign_created", "campaign_id", "created_at", "id", "deleted_at"),
    Index("ix_experiments_owner_created", "owner", "created_at", "id"),
    # claims walk queued experiments by priority then age; sweeps walk leases by expiry
    Index("ix_experiments_queue", "status", "priority", "created_at"),
    Index("ix_experiments_lease", "status", "lease_expires_at"),
)

#: The number of experiments not in the trash, kept by triggers in the transaction of every
#: insert, purge, trash and restore (migration 0006 has them). SQLite has one row; PostgreSQL
#: one per group of connections (the connection's process id modulo 16), so concurrent inserts
#: do not queue on one row lock. The count is the sum of ``live``.
experiment_counts = Table(
    "experiment_counts",
    metadata,
    Column("shard", Integer, primary_key=True),
    Column("live", BigInteger, nullable=False),
)

#: The same per campaign: how many live experiments are linked to it (declared ids aside).
campaign_counts = Table(
    "campaign_counts",
    metadata,
    Column("campaign_id", ID, primary_key=True),
    Column("shard", Integer, primary_key=True),
    Column("live", BigInteger, nullable=False),
)

#: Tables and indexes that the migrations create beside those above and that SQLAlchemy does
#: not describe: the SQLite FTS5 table ``experiments_text`` (and its shadow tables) and the
#: PostgreSQL trigram index over the text the ``text`` filter searches.
SEARCH_OBJECTS = ("experiments_text", "ix_experiments_text_trgm")


def described(name: str | None) -> bool:
    """False for a table or index of :data:`SEARCH_OBJECTS` (schema comparisons skip them)."""
    return name is None or not name.startswith(SEARCH_OBJECTS)


campaigns = Table(
    "campaigns",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(1000), nullable=False),
    Column("description", Text),
    Column("status", String(16), nullable=False),
    Column("owner", ID),
    Column("ownership", JSONType, nullable=False),
    Column("parameters", JSONType, nullable=False),
    Column("metadata", JSONType, nullable=False),
    Column("declared_experiment_ids", JSONType, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Index("ix_campaigns_created", "created_at", "id"),
)

events = Table(
    "events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("experiment_id", ID),
    Column("campaign_id", ID),
    Column("type", String(40), nullable=False),
    Column("actor", String(200)),
    Column("from_status", String(16)),
    Column("to_status", String(16)),
    Column("at", UTCDateTime, nullable=False),
    Column("data", JSONType, nullable=False),
    Index("ix_events_experiment", "experiment_id", "id"),
    Index("ix_events_campaign", "campaign_id", "id"),
    # ids are never reused, also after a purge: followers resume "after id N"
    sqlite_autoincrement=True,
)


# ------------------------------------------------ results, milestones, resource uses, forwarding

BIGID = BigInteger().with_variant(Integer, "sqlite")

results = Table(
    "results",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("experiment_id", ID, nullable=False),
    Column("campaign_id", ID),
    Column("name", String(200), nullable=False),
    Column("kind", String(8), nullable=False, doc="value or file"),
    Column("value", JSONType, doc="the value of a value result"),
    Column("digest", String(64), doc="BLAKE3 hex digest of a file result"),
    Column("size", BigInteger),
    Column("media_type", String(200)),
    Column("filename", String(1000)),
    Column("actor", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    # one result per name: posting a name again replaces it (the event log keeps the history)
    Index("ix_results_experiment_name", "experiment_id", "name", unique=True),
    Index("ix_results_campaign", "campaign_id", "experiment_id"),
    Index("ix_results_digest", "digest"),
    sqlite_autoincrement=True,
)

milestones = Table(
    "milestones",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("experiment_id", ID, nullable=False),
    Column("name", String(200), nullable=False),
    Column("progress", Float),
    Column("data", JSONType, nullable=False),
    Column("actor", String(200)),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_milestones_experiment", "experiment_id", "id"),
    sqlite_autoincrement=True,
)

resource_uses = Table(
    "resource_uses",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("experiment_id", ID, nullable=False),
    Column("campaign_id", ID),
    Column("resource_id", String(200), nullable=False),
    Column("resource_type", String(40), nullable=False),
    Column("name", String(1000)),
    Column("quantity", Float),
    Column("unit", String(40)),
    Column("data", JSONType, nullable=False),
    Column("actor", String(200)),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_resource_uses_resource", "resource_id", "id"),
    Index("ix_resource_uses_experiment", "experiment_id", "id"),
    sqlite_autoincrement=True,
)

forward_cursors = Table(
    "forward_cursors",
    metadata,
    Column("target", String(200), primary_key=True, doc="webhook URL or 'madsci:<url>'"),
    Column("last_event_id", BigInteger, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("last_error", Text),
    Column("next_attempt_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
)


# ------------------------------------------------------------------ API tokens, idempotency keys

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("name", String(64), primary_key=True, doc="shown in the event log as token:<name>"),
    Column("secret_hash", String(64), nullable=False, doc="hex SHA-256 of the secret"),
    Column("scope", String(8), nullable=False, doc="read, write or admin"),
    Column("note", Text),
    Column("created_by", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime),
    Column("revoked_at", UTCDateTime, doc="set by revoke; the row stays for the audit trail"),
    Index("ix_api_tokens_secret_hash", "secret_hash", unique=True),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", String(200), primary_key=True, doc="token name, or '' when anonymous"),
    Column("key", String(200), primary_key=True, doc="the client's Idempotency-Key"),
    Column("method", String(8), nullable=False),
    Column("path", String(1000), nullable=False),
    Column("fingerprint", String(64), nullable=False, doc="SHA-256 of method, path and body"),
    Column("resource_kind", String(40), nullable=False, doc="experiment, campaign, result ..."),
    Column("resource_id", String(200), nullable=False),
    Column("status_code", Integer, doc="the first answer, stored once it was sent"),
    Column("response_body", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_idempotency_keys_created", "created_at"),
)


# --------------------------------------------------------------------------- metric series

metric_series = Table(
    "metric_series",
    metadata,
    Column("id", BIGID, primary_key=True, autoincrement=True),
    Column("experiment_id", ID, nullable=False),
    Column("name", String(200), nullable=False),
    Column("point_count", BigInteger, nullable=False),
    Column("first_step", BigInteger),
    Column("last_step", BigInteger, doc="the highest step"),
    Column("last_value", Float, doc="the value at the highest step, queryable like a result"),
    Column("last_at", Float, doc="seconds since the epoch of the last point"),
    Column("min_value", Float),
    Column("max_value", Float),
    Index("ix_metric_series_experiment_name", "experiment_id", "name", unique=True),
    # filters and sorts on a metric's last value walk this index (metrics.<name> in queries)
    Index("ix_metric_series_name_last", "name", "last_value", "experiment_id"),
    sqlite_autoincrement=True,
)

metric_points = Table(
    "metric_points",
    metadata,
    Column("series_id", BigInteger, primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("value", Float, nullable=False),
    Column("at", Float, nullable=False, doc="seconds since the epoch"),
    # clustered by (series, step) on SQLite: a series is read as one range of the table
    sqlite_with_rowid=False,
)

metric_blocks = Table(
    "metric_blocks",
    metadata,
    Column("series_id", BigInteger, primary_key=True),
    Column("level", Integer, primary_key=True, doc="1, 2, 3: blocks of 16, 256, 4096 steps"),
    Column("block", BigInteger, primary_key=True, doc="step >> (4 * level)"),
    Column("count", BigInteger, nullable=False),
    Column("lo_step", BigInteger, nullable=False),
    Column("lo_value", Float, nullable=False),
    Column("lo_at", Float, nullable=False),
    Column("hi_step", BigInteger, nullable=False),
    Column("hi_value", Float, nullable=False),
    Column("hi_at", Float, nullable=False),
    # the lowest and highest point of each block, so a downsampled read of a long series
    # aggregates a few thousand blocks instead of every point
    sqlite_with_rowid=False,
)
