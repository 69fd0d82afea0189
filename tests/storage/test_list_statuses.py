"""Lists filtered by several statuses come back in the same order and pages as a full sort."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from labledger.core.lifecycle import ExperimentStatus
from labledger.core.models import Experiment, ExperimentDesign, ExperimentQuery, OwnershipInfo
from labledger.storage.engine import create_db_engine
from labledger.storage.experiments_sql import _list_statement
from labledger.storage.schema import ensure_ready
from labledger.storage.sql import SqlStore

S = ExperimentStatus
BASE = datetime(2026, 1, 1, tzinfo=UTC)
CAMPAIGNS = ["01JC0000000000000000000001", "01JC0000000000000000000002"]
OWNERS = ["01JC00000000000000000000A1", "01JC00000000000000000000A2", "01JC00000000000000000000A3"]


@pytest.fixture
def filled(db_url: str) -> Iterator[tuple[SqlStore, list[Experiment]]]:
    engine: Engine = create_db_engine(db_url)
    ensure_ready(engine, db_url)
    store = SqlStore(engine)
    rnd = random.Random(3)
    stored: list[Experiment] = []
    for i in range(120):
        # some share a created_at, so the id must break ties the same way in both paths
        exp = Experiment(
            status=rnd.choice(list(S)),
            experiment_design=ExperimentDesign(experiment_name=f"e{i}"),
            run_name=rnd.choice(["alpha run", "beta run"]),
            campaign_id=CAMPAIGNS[i % 2],
            ownership_info=OwnershipInfo(user_id=OWNERS[i % 3]),
            created_at=BASE + timedelta(seconds=i // 3),
            updated_at=BASE,
            deleted_at=BASE if i % 17 == 0 else None,
        )
        store.experiments.insert(exp, [])
        stored.append(exp)
    yield store, stored
    engine.dispose()


@pytest.mark.parametrize("sort", ["-created_at", "created_at"])
@pytest.mark.parametrize(
    "statuses",
    [[S.IN_PROGRESS, S.PAUSED], [S.COMPLETED, S.FAILED, S.CANCELLED], [S.QUEUED, S.QUEUED]],
    ids=["two", "three", "repeated"],
)
def test_several_statuses_page_like_a_full_sort(
    filled: tuple[SqlStore, list[Experiment]], statuses: list[ExperimentStatus], sort: str
) -> None:
    store, stored = filled
    wanted = [e for e in stored if e.status in statuses and e.deleted_at is None]
    wanted.sort(key=lambda e: (e.created_at, e.experiment_id), reverse=sort.startswith("-"))
    expected = [e.experiment_id for e in wanted]
    assert len(expected) > 10
    for offset, limit in [(0, 10), (5, 7), (len(expected) - 3, 10), (len(expected) + 1, 10)]:
        query = ExperimentQuery(statuses=statuses, sort=sort, offset=offset, limit=limit)
        got = [e.experiment_id for e in store.experiments.find(query)]
        assert got == expected[offset : offset + limit], (offset, limit)
    everything = store.experiments.find(ExperimentQuery(statuses=statuses, sort=sort, limit=0))
    assert [e.experiment_id for e in everything] == expected
    first = store.experiments.find(ExperimentQuery(statuses=statuses, sort=sort, limit=1))[0]
    assert first.created_at.tzinfo is not None and first.experiment_design is not None


FILTERS: dict[str, tuple[dict[str, object], Callable[[Experiment], bool]]] = {
    "campaign": ({"campaign_id": CAMPAIGNS[1]}, lambda e: e.campaign_id == CAMPAIGNS[1]),
    "owner": ({"owner": OWNERS[2]}, lambda e: e.ownership_info.user_id == OWNERS[2]),
    "text": ({"text": "ALPHA"}, lambda e: "alpha" in (e.run_name or "")),
    "time": (
        {"since": BASE + timedelta(seconds=5), "until": BASE + timedelta(seconds=30)},
        lambda e: BASE + timedelta(seconds=5) <= e.created_at < BASE + timedelta(seconds=30),
    ),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_several_statuses_combine_with_the_other_filters(
    filled: tuple[SqlStore, list[Experiment]], name: str
) -> None:
    store, stored = filled
    statuses = [S.IN_PROGRESS, S.PAUSED, S.COMPLETED, S.FAILED]
    filters, keep = FILTERS[name]
    wanted = [e for e in stored if e.status in statuses and e.deleted_at is None and keep(e)]
    wanted.sort(key=lambda e: (e.created_at, e.experiment_id), reverse=True)
    expected = [e.experiment_id for e in wanted]
    assert len(expected) > 7
    got = store.experiments.find(ExperimentQuery(statuses=statuses, limit=0, **filters))
    assert [e.experiment_id for e in got] == expected
    page = store.experiments.find(ExperimentQuery(statuses=statuses, offset=3, limit=4, **filters))
    assert [e.experiment_id for e in page] == expected[3:7]


def test_a_several_status_list_is_built_once_per_filters_and_pages_right_each_time(
    filled: tuple[SqlStore, list[Experiment]],
) -> None:
    """The statement of a several-status list without text is kept and run again for the same
    filters (building it cost more than running it); other filters get their own."""
    store, stored = filled
    statuses = [S.COMPLETED, S.FAILED]

    def query(**filters: object) -> ExperimentQuery:
        return ExperimentQuery(statuses=statuses, limit=5, **filters)

    assert _list_statement(query(), None) is _list_statement(query(), None)
    assert _list_statement(query(), None) is not _list_statement(query(offset=5), None)
    for _ in range(2):  # again, through the kept statements
        for campaign in [*CAMPAIGNS, None]:
            for deleted in (False, True):
                wanted = [
                    e.experiment_id
                    for e in sorted(
                        stored, key=lambda e: (e.created_at, e.experiment_id), reverse=True
                    )
                    if e.status in statuses
                    and (e.deleted_at is not None) == deleted
                    and campaign in (None, e.campaign_id)
                ]
                got = store.experiments.find(query(campaign_id=campaign, deleted=deleted))
                assert [e.experiment_id for e in got] == wanted[:5], (campaign, deleted)
