"""Initial schema: experiments, campaigns, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from labledger.storage.tables import JSONType, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.String(26)


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", ID, primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("name", sa.String(1000), nullable=False),
        sa.Column("run_name", sa.String(1000)),
        sa.Column("run_description", sa.Text),
        sa.Column("campaign_id", ID),
        sa.Column("owner", ID),
        sa.Column("design", JSONType),
        sa.Column("ownership", JSONType, nullable=False),
        sa.Column("parameters", JSONType, nullable=False),
        sa.Column("metadata", JSONType, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("not_before", UTCDateTime),
        sa.Column("progress", sa.Float),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("started_at", UTCDateTime),
        sa.Column("ended_at", UTCDateTime),
        sa.Column("deleted_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_experiments"),
    )
    op.create_index("ix_experiments_created", "experiments", ["created_at", "id"])
    op.create_index("ix_experiments_status_created", "experiments", ["status", "created_at", "id"])
    op.create_index(
        "ix_experiments_campaign_created", "experiments", ["campaign_id", "created_at", "id"]
    )
    op.create_index("ix_experiments_owner_created", "experiments", ["owner", "created_at", "id"])

    op.create_table(
        "campaigns",
        sa.Column("id", ID),
        sa.Column("name", sa.String(1000), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", ID),
        sa.Column("ownership", JSONType, nullable=False),
        sa.Column("parameters", JSONType, nullable=False),
        sa.Column("metadata", JSONType, nullable=False),
        sa.Column("declared_experiment_ids", JSONType, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
    )
    op.create_index("ix_campaigns_created", "campaigns", ["created_at", "id"])

    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), autoincrement=True),
        sa.Column("experiment_id", ID),
        sa.Column("campaign_id", ID),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16)),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("data", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_experiment", "events", ["experiment_id", "id"])
    op.create_index("ix_events_campaign", "events", ["campaign_id", "id"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("campaigns")
    op.drop_table("experiments")
