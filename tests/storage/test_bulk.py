"""Experiments stored in bulk (one transaction, SQLite through the driver) are stored exactly as
one at a time through SQLAlchemy, and a failing bulk stores nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from labledger.core.ids import new_ulid
from labledger.core.lifecycle import ExperimentStatus
from labledger.core.models import Event, EventType, Experiment, ExperimentDesign, OwnershipInfo
from labledger.storage.engine import create_db_engine
from labledger.storage.schema import ensure_ready
from labledger.storage.sql import SqlStore
from labledger.storage.tables import events, experiments

USER = "01JAAAAAAAAAAAAAAAAAAAAAAA"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_db_engine(db_url)
    ensure_ready(engine, db_url)
    yield engine
    engine.dispose()


def _pair(experiment_id: str, *, design: bool = True) -> tuple[Experiment, Event]:
    at = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    experiment = Experiment(
        _id=experiment_id,
        status=ExperimentStatus.QUEUED,
        experiment_design=ExperimentDesign(
            experiment_name="titration ✓",
            experiment_description="with \"quotes\" and 'apostrophes'",
            parameters={"volume_ml": 1.25, "tiny": 1e-9, "big": 2**70},
        )
        if design
        else None,
        ownership_info=OwnershipInfo(user_id=USER, experiment_id=experiment_id),
        run_name="run é",
        run_description=None,
        created_at=at,
        updated_at=at,
        not_before=at + timedelta(hours=1),
        parameters={"sample": "A1", "nested": {"list": [1, None, True]}},
        metadata={"operator": "ada"},
        priority=-7,
    )
    event = Event(
        experiment_id=experiment_id,
        type=EventType.CREATED,
        actor="robot",
        to_status="queued",
        at=at,
        data={"why": "test"},
    )
    return experiment, event


def _stored(engine: Engine, experiment_id: str) -> tuple[dict[str, object], dict[str, object]]:
    """The rows as the driver returns them (text SQL: no SQLAlchemy type processing), without
    what differs by design (ids, and the ownership naming the experiment)."""
    key = {"id": experiment_id}
    with engine.connect() as conn:
        exp = conn.execute(text("SELECT * FROM experiments WHERE id = :id"), key).one()
        ev = conn.execute(text("SELECT * FROM events WHERE experiment_id = :id"), key).one()
    exp_row = {k: v for k, v in exp._mapping.items() if k not in ("id", "ownership")}
    ev_row = {k: v for k, v in ev._mapping.items() if k not in ("id", "experiment_id")}
    return exp_row, ev_row


@pytest.mark.parametrize("design", [True, False], ids=["with design", "without design"])
def test_experiments_stored_in_bulk_are_stored_as_one_at_a_time(
    engine: Engine, design: bool
) -> None:
    store = SqlStore(engine).experiments
    one, one_event = _pair(new_ulid(), design=design)
    store.insert(one, [one_event])
    bulk = [_pair(new_ulid(), design=design) for _ in range(3)]
    store.insert_many([e for e, _ in bulk], [ev for _, ev in bulk])
    expected = _stored(engine, one.experiment_id)
    for experiment, _ in bulk:
        assert _stored(engine, experiment.experiment_id) == expected
        assert store.get(experiment.experiment_id) == experiment


def test_a_bulk_that_fails_stores_nothing_and_the_store_goes_on(engine: Engine) -> None:
    store = SqlStore(engine).experiments
    taken, taken_event = _pair(new_ulid())
    store.insert(taken, [taken_event])
    fresh = _pair(new_ulid())
    clash = _pair(taken.experiment_id)
    with pytest.raises(SAIntegrityError):
        store.insert_many([fresh[0], clash[0]], [fresh[1], clash[1]])
    with engine.connect() as conn:
        assert conn.execute(select(experiments.c.id)).scalars().all() == [taken.experiment_id]
        assert len(conn.execute(select(events.c.id)).all()) == 1
    store.insert_many([fresh[0]], [fresh[1]])
    assert store.get(fresh[0].experiment_id) == fresh[0]


def test_many_rows_go_in_statements_within_sqlites_parameter_limit(engine: Engine) -> None:
    store = SqlStore(engine).experiments
    made = [_pair(new_ulid()) for _ in range(300)]  # 300 x 24 columns: several statements
    store.insert_many([e for e, _ in made], [ev for _, ev in made])
    assert store.count() == 300
