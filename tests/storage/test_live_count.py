"""The count of live experiments without filters comes from a counter that every way of
storing, trashing, restoring and purging experiments keeps right, also under concurrent
writers (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from labledger.core.models import (
    Event,
    EventType,
    Experiment,
    ExperimentalCampaign,
    ExperimentDesign,
    ExperimentQuery,
)
from labledger.storage.engine import create_db_engine, write_transaction
from labledger.storage.schema import ensure_ready
from labledger.storage.sql import SqlStore

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    engine: Engine = create_db_engine(db_url)
    ensure_ready(engine, db_url)
    yield SqlStore(engine)
    engine.dispose()


def _new(name: str = "e") -> Experiment:
    return Experiment(experiment_design=ExperimentDesign(experiment_name=name))


def _counted(store: SqlStore) -> int:
    """The counter's answer, checked against a count of the rows (a filter forces a scan)."""
    counted = store.experiments.count()
    assert counted == store.experiments.count(ExperimentQuery(since=LONG_AGO))
    return counted


def test_the_count_follows_inserts_trash_restore_and_purge(store: SqlStore) -> None:
    assert _counted(store) == 0
    first, second = _new(), _new()
    store.experiments.insert(first, [])
    store.experiments.insert_many([second, _new(), _new()], [])
    campaign = ExperimentalCampaign(campaign_name="c", experiment_ids=[first.experiment_id])
    store.campaigns.insert(campaign, [], [_new(), _new()])
    assert _counted(store) == 6
    trashed = store.experiments.update(second.experiment_id, 1, {"deleted_at": LONG_AGO}, [])
    assert trashed is not None and _counted(store) == 5
    # a change that keeps it in the trash does not count it twice
    store.experiments.update(second.experiment_id, 2, {"run_name": "still trashed"}, [])
    assert _counted(store) == 5
    store.experiments.update(second.experiment_id, 3, {"deleted_at": None}, [])
    assert _counted(store) == 6
    store.experiments.update(second.experiment_id, 4, {"deleted_at": LONG_AGO}, [])
    event = Event(type=EventType.DELETED, experiment_id=second.experiment_id)
    store.experiments.purge(second.experiment_id, event)
    assert _counted(store) == 5
    event = Event(type=EventType.DELETED, experiment_id=first.experiment_id)
    store.experiments.purge(first.experiment_id, event)  # purged while live
    assert _counted(store) == 4
    with write_transaction(store.engine) as conn:
        conn.exec_driver_sql("DELETE FROM experiments")
    assert _counted(store) == 0


def test_a_failed_transaction_leaves_the_count_alone(store: SqlStore) -> None:
    store.experiments.insert(_new(), [])
    with pytest.raises(RuntimeError), write_transaction(store.engine) as conn:
        conn.exec_driver_sql("DELETE FROM experiments")
        raise RuntimeError("rolled back")
    assert _counted(store) == 1


def test_concurrent_writers_keep_the_count(store: SqlStore) -> None:
    def work(i: int) -> None:
        exp = _new(f"w{i}")
        store.experiments.insert(exp, [])
        if i % 3 == 0:
            store.experiments.update(exp.experiment_id, 1, {"deleted_at": LONG_AGO}, [])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(120)))
    assert _counted(store) == 80
