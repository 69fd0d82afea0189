"""The :class:`~labledger.core.store.Store` over SQLAlchemy Core (SQLite and PostgreSQL).

One engine, one repository per kind of record; each repository runs its own transactions
(:mod:`.engine`) and maps rows through :mod:`.rows`.
"""

from __future__ import annotations

from sqlalchemy import Engine

from labledger.storage.access_sql import TokenStore
from labledger.storage.campaigns_sql import CampaignStore
from labledger.storage.engine import read_transaction
from labledger.storage.events_sql import EventStore
from labledger.storage.experiments_sql import ExperimentStore
from labledger.storage.forwarding_sql import ForwardCursorStore
from labledger.storage.idempotency_sql import IdempotencyStore
from labledger.storage.metrics_sql import MetricSqlStore
from labledger.storage.queue_sql import QueueStore
from labledger.storage.records_sql import RecordStore

__all__ = ["SqlStore"]


class SqlStore:
    """Every repository of the lab over one SQL database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.experiments = ExperimentStore(engine)
        self.campaigns = CampaignStore(engine)
        self.events = EventStore(engine)
        self.queue = QueueStore(engine)
        self.records = RecordStore(engine)
        self.forward_cursors = ForwardCursorStore(engine)
        self.tokens = TokenStore(engine)
        self.idempotency = IdempotencyStore(engine)
        self.metrics = MetricSqlStore(engine)

    def ping(self) -> None:
        """Raise :class:`labledger.errors.StorageError` when the database cannot be reached."""
        with read_transaction(self.engine) as conn:
            conn.exec_driver_sql("SELECT 1")
