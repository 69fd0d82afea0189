"""Forwarding cursors in the SQL database: how far each target has got in the event log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, insert, or_, select, update

from labledger.core.ids import utcnow
from labledger.core.store import StoredCursor
from labledger.storage.engine import read_transaction, write_transaction
from labledger.storage.rows import row_to_cursor
from labledger.storage.tables import forward_cursors

__all__ = ["ForwardCursorStore"]

F = forward_cursors.c


class ForwardCursorStore:
    """The :class:`~labledger.core.store.ForwardCursors` repository."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def get(self, target: str) -> StoredCursor | None:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(forward_cursors).where(F.target == target)).first()
        return None if row is None else row_to_cursor(row)

    def claim(self, target: str, now: datetime, until: datetime) -> bool:
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                update(forward_cursors)
                .where(
                    F.target == target,
                    or_(F.next_attempt_at.is_(None), F.next_attempt_at <= now),
                )
                .values(next_attempt_at=until, updated_at=utcnow())
            )
            return bool(done.rowcount == 1)

    def save(
        self,
        target: str,
        last_event_id: int,
        failures: int,
        last_error: str | None,
        next_attempt_at: datetime | None,
    ) -> None:
        values = {
            "last_event_id": last_event_id,
            "failures": failures,
            "last_error": last_error,
            "next_attempt_at": next_attempt_at,
            "updated_at": utcnow(),
        }
        with write_transaction(self.engine) as conn:
            done = conn.execute(update(forward_cursors).where(F.target == target).values(**values))
            if done.rowcount == 0:
                conn.execute(insert(forward_cursors).values(target=target, **values))
