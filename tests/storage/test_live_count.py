"""The count of live experiments without filters comes from a counter that every way of
storing, trashing, restoring and purging experiments keeps right, also under concurrent
writers (PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from labledger.core.models import (
    Event,
    EventType,
    Experiment,
    ExperimentalCampaign,
    ExperimentDesign,
    ExperimentQuery,
)
from labledger.storage.engine import write_transaction
from labledger.storage.sql import SqlStore

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def _new(name: str = "e") -> Experiment:
    return Experiment(experiment_design=ExperimentDesign(experiment_name=name))


def _campaign_size(store: SqlStore, campaign_id: str) -> int:
    """The campaign's size from its counter, checked against the ids read from the index."""
    campaign = store.campaigns.get(campaign_id)
    assert campaign.experiment_count == len(campaign.experiment_ids or [])
    return campaign.experiment_count


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
    members = [_new(), _new()]
    for member in members:
        member.campaign_id = campaign.campaign_id
    store.campaigns.insert(campaign, [], members)
    assert _counted(store) == 6
    assert _campaign_size(store, campaign.campaign_id) == 3  # first, declared and linked
    moved = store.experiments.update(
        second.experiment_id, 1, {"campaign_id": campaign.campaign_id}, []
    )
    assert moved is not None and _campaign_size(store, campaign.campaign_id) == 4
    trashed = store.experiments.update(second.experiment_id, 2, {"deleted_at": LONG_AGO}, [])
    assert trashed is not None and _counted(store) == 5
    assert _campaign_size(store, campaign.campaign_id) == 3
    # a change that keeps it in the trash does not count it twice
    store.experiments.update(second.experiment_id, 3, {"run_name": "still trashed"}, [])
    assert _counted(store) == 5
    store.experiments.update(second.experiment_id, 4, {"deleted_at": None}, [])
    assert _counted(store) == 6 and _campaign_size(store, campaign.campaign_id) == 4
    store.experiments.update(second.experiment_id, 5, {"campaign_id": None}, [])
    assert _campaign_size(store, campaign.campaign_id) == 3
    store.experiments.update(second.experiment_id, 6, {"deleted_at": LONG_AGO}, [])
    event = Event(type=EventType.DELETED, experiment_id=second.experiment_id)
    store.experiments.purge(second.experiment_id, event)
    assert _counted(store) == 5
    event = Event(type=EventType.DELETED, experiment_id=first.experiment_id)
    store.experiments.purge(first.experiment_id, event)  # purged while live
    assert _counted(store) == 4
    assert _campaign_size(store, campaign.campaign_id) == 3  # still declared
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
    campaign = ExperimentalCampaign(campaign_name="busy")
    store.campaigns.insert(campaign, [])

    def work(i: int) -> None:
        exp = _new(f"w{i}")
        exp.campaign_id = campaign.campaign_id if i % 2 else None
        store.experiments.insert(exp, [])
        if i % 3 == 0:
            store.experiments.update(exp.experiment_id, 1, {"deleted_at": LONG_AGO}, [])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(120)))
    assert _counted(store) == 80
    # odd numbers are in the campaign, and a third of those (i % 6 == 3) went to the trash
    assert _campaign_size(store, campaign.campaign_id) == 40
