"""Revision 0004 (PostgreSQL: event ids in commit order): upgrade from 0003 keeps the log and
its ids, later events follow them, and a downgrade returns to plain sequence ids."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from labledger.storage.engine import create_db_engine
from labledger.storage.tables import events
from labledger_fixtures import migrate

pytestmark = pytest.mark.postgres


def _log(engine: object) -> list[tuple[int, str]]:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        rows = conn.execute(select(events.c.id, events.c.actor).order_by(events.c.id)).all()
    return [(r.id, r.actor) for r in rows]


def _append(engine: object, actor: str) -> None:
    with engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(
            insert(events).values(type="updated", actor=actor, at=datetime.now(UTC), data={})
        )


def test_upgrade_keeps_the_log_and_hands_out_later_ids_at_commit(pg_url: str) -> None:
    engine = create_db_engine(pg_url)
    try:
        migrate(engine, "0003")
        _append(engine, "before")
        migrate(engine, "0004")
        assert _log(engine) == [(1, "before")]
        with engine.connect() as held:
            transaction = held.begin()
            held.execute(
                insert(events).values(type="updated", actor="held", at=datetime.now(UTC), data={})
            )
            _append(engine, "meanwhile")
            transaction.commit()
        # the held transaction committed last, so it comes last in the log
        assert [actor for _, actor in _log(engine)] == ["before", "meanwhile", "held"]
        assert all(event_id > 0 for event_id, _ in _log(engine))
        migrate(engine, "0003", down=True)
        _append(engine, "after downgrade")
        assert _log(engine)[-1][1] == "after downgrade" and _log(engine)[-1][0] > 0
    finally:
        engine.dispose()
