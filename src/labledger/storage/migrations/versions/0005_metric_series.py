"""Metric series: one row per (experiment, name) with its summary, the points by step, and
the lowest and highest point per block of steps (for downsampled reads).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "metric_series",
        sa.Column("id", BIGID, autoincrement=True),
        sa.Column("experiment_id", sa.String(26), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("point_count", sa.BigInteger, nullable=False),
        sa.Column("first_step", sa.BigInteger),
        sa.Column("last_step", sa.BigInteger),
        sa.Column("last_value", sa.Float),
        sa.Column("last_at", sa.Float),
        sa.Column("min_value", sa.Float),
        sa.Column("max_value", sa.Float),
        sa.PrimaryKeyConstraint("id", name="pk_metric_series"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_metric_series_experiment_name",
        "metric_series",
        ["experiment_id", "name"],
        unique=True,
    )
    op.create_index(
        "ix_metric_series_name_last", "metric_series", ["name", "last_value", "experiment_id"]
    )
    op.create_table(
        "metric_points",
        sa.Column("series_id", sa.BigInteger, nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("series_id", "step", name="pk_metric_points"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "metric_blocks",
        sa.Column("series_id", sa.BigInteger, nullable=False),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("block", sa.BigInteger, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("lo_step", sa.BigInteger, nullable=False),
        sa.Column("lo_value", sa.Float, nullable=False),
        sa.Column("lo_at", sa.Float, nullable=False),
        sa.Column("hi_step", sa.BigInteger, nullable=False),
        sa.Column("hi_value", sa.Float, nullable=False),
        sa.Column("hi_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("series_id", "level", "block", name="pk_metric_blocks"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("metric_blocks")
    op.drop_table("metric_points")
    op.drop_index("ix_metric_series_name_last", table_name="metric_series")
    op.drop_index("ix_metric_series_experiment_name", table_name="metric_series")
    op.drop_table("metric_series")
