"""PostgreSQL: event ids are handed out in commit order.

Followers of the log (``GET /events/stream``, webhooks, the MADSci Event Manager forwarder) read
"events after id N". With ids from a plain sequence, a transaction can commit id N after N+1 is
already visible, and a follower that has moved past N+1 never sees N. Here an event gets a
temporary negative id when it is inserted; a deferred constraint trigger gives it its place in
the log at commit, under a transaction-level advisory lock held until the commit is visible. So
an id is visible only after every lower id is. SQLite needs none of this: it has one writer.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: the advisory lock that orders the commits of transactions that wrote events
EVENT_LOG_LOCK = 0x6C61626C65646772  # "labledgr"

UPGRADE = [
    "CREATE SEQUENCE events_pending_id_seq",
    "ALTER TABLE events ALTER COLUMN id SET DEFAULT -nextval('events_pending_id_seq')",
    f"""
    CREATE FUNCTION events_take_log_position() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_advisory_xact_lock({EVENT_LOG_LOCK});
        UPDATE events SET id = nextval('events_id_seq') WHERE id = NEW.id;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE CONSTRAINT TRIGGER events_log_position AFTER INSERT ON events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.id < 0)
    EXECUTE FUNCTION events_take_log_position()
    """,
]

DOWNGRADE = [
    "DROP TRIGGER events_log_position ON events",
    "DROP FUNCTION events_take_log_position()",
    "ALTER TABLE events ALTER COLUMN id SET DEFAULT nextval('events_id_seq')",
    "DROP SEQUENCE events_pending_id_seq",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in DOWNGRADE:
        op.execute(statement)
