"""The event log repository on SQLite and PostgreSQL: appends, reads after a cursor, last id."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from labledger.core.models import Event, EventType
from labledger.storage.engine import create_db_engine
from labledger.storage.events_sql import EventStore
from labledger.storage.schema import ensure_ready


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    made = create_db_engine(db_url)
    ensure_ready(made, db_url)
    yield made
    made.dispose()


def test_appended_events_are_read_in_order_after_a_cursor(engine: Engine) -> None:
    log = EventStore(engine)
    start = log.last_id()
    log.append([])
    assert log.last_id() == start
    log.append(
        [
            Event(type=EventType.WORKFLOW_CONTROL, actor="a", data={"action": "pause", "n": 1}),
            Event(type=EventType.WORKFLOW_CONTROL, actor="b", data={"action": "resume", "n": 2}),
        ]
    )
    after = log.find(after_id=start)
    assert [(e.actor, e.data["n"]) for e in after] == [("a", 1), ("b", 2)]
    ids = [e.event_id for e in after]
    assert ids[-1] == log.last_id()
    assert ids[0] is not None
    assert [e.actor for e in log.find(after_id=ids[0])] == ["b"]
    assert log.find(after_id=start, limit=1)[0].actor == "a"
