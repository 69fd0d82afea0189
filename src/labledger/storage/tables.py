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

__all__ = ["JSONType", "UTCDateTime", "campaigns", "events", "experiments", "metadata"]


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
    # "latest N" and every filter below walk an index in ORDER BY order, so their cost does not
    # grow with the table.
    Index("ix_experiments_created", "created_at", "id"),
    Index("ix_experiments_status_created", "status", "created_at", "id"),
    Index("ix_experiments_campaign_created", "campaign_id", "created_at", "id"),
    Index("ix_experiments_owner_created", "owner", "created_at", "id"),
)

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
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
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
