"""Queue leases, results, milestones, resource uses and event-forwarding cursors.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from labledger.storage.tables import JSONType, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(26)
BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("worker_id", sa.String(200)))
        batch.add_column(sa.Column("claimed_at", UTCDateTime))
        batch.add_column(sa.Column("lease_expires_at", UTCDateTime))
    op.create_index("ix_experiments_queue", "experiments", ["status", "priority", "created_at"])
    op.create_index("ix_experiments_lease", "experiments", ["status", "lease_expires_at"])

    op.create_table(
        "results",
        sa.Column("id", BIGID, autoincrement=True),
        sa.Column("experiment_id", ID, nullable=False),
        sa.Column("campaign_id", ID),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("value", JSONType),
        sa.Column("digest", sa.String(64)),
        sa.Column("size", sa.BigInteger),
        sa.Column("media_type", sa.String(200)),
        sa.Column("filename", sa.String(1000)),
        sa.Column("actor", sa.String(200)),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_results"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_results_experiment_name", "results", ["experiment_id", "name"], unique=True)
    op.create_index("ix_results_campaign", "results", ["campaign_id", "experiment_id"])
    op.create_index("ix_results_digest", "results", ["digest"])

    op.create_table(
        "milestones",
        sa.Column("id", BIGID, autoincrement=True),
        sa.Column("experiment_id", ID, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("progress", sa.Float),
        sa.Column("data", JSONType, nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_milestones"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_milestones_experiment", "milestones", ["experiment_id", "id"])

    op.create_table(
        "resource_uses",
        sa.Column("id", BIGID, autoincrement=True),
        sa.Column("experiment_id", ID, nullable=False),
        sa.Column("campaign_id", ID),
        sa.Column("resource_id", sa.String(200), nullable=False),
        sa.Column("resource_type", sa.String(40), nullable=False),
        sa.Column("name", sa.String(1000)),
        sa.Column("quantity", sa.Float),
        sa.Column("unit", sa.String(40)),
        sa.Column("data", JSONType, nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_resource_uses"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_resource_uses_resource", "resource_uses", ["resource_id", "id"])
    op.create_index("ix_resource_uses_experiment", "resource_uses", ["experiment_id", "id"])

    op.create_table(
        "forward_cursors",
        sa.Column("target", sa.String(200)),
        sa.Column("last_event_id", sa.BigInteger, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", UTCDateTime),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("target", name="pk_forward_cursors"),
    )


def downgrade() -> None:
    op.drop_table("forward_cursors")
    op.drop_table("resource_uses")
    op.drop_table("milestones")
    op.drop_table("results")
    op.drop_index("ix_experiments_lease", "experiments")
    op.drop_index("ix_experiments_queue", "experiments")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("claimed_at")
        batch.drop_column("worker_id")
