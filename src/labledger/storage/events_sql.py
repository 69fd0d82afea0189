"""The event log in the SQL database (events are appended by the writes that cause them, or
alone for what happened outside the lab's own changes)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine, func, select

from labledger.core.models import Event
from labledger.storage.engine import read_transaction, single_statement, write_transaction
from labledger.storage.rows import append_events, row_to_event
from labledger.storage.tables import events

__all__ = ["EventStore"]

V = events.c


class EventStore:
    """The :class:`~labledger.core.store.EventLog` repository."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(self, events_: Sequence[Event]) -> None:
        with write_transaction(self.engine) as conn:
            append_events(conn, events_)

    def find(
        self,
        *,
        experiment_id: str | None = None,
        campaign_id: str | None = None,
        after_id: int = 0,
        limit: int = 1000,
        since: datetime | None = None,
    ) -> list[Event]:
        stmt = select(events).where(V.id > after_id)
        if experiment_id is not None:
            stmt = stmt.where(V.experiment_id == experiment_id)
        if campaign_id is not None:
            stmt = stmt.where(V.campaign_id == campaign_id)
        if since is not None:
            stmt = stmt.where(V.at >= since)
        stmt = stmt.order_by(V.id).limit(limit)
        with single_statement(self.engine) as conn:
            return [row_to_event(r) for r in conn.execute(stmt)]

    def last_id(self) -> int:
        with read_transaction(self.engine) as conn:
            return int(conn.execute(select(func.coalesce(func.max(V.id), 0))).scalar_one())
