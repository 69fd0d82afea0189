"""``GET /experiments`` (every filter) and ``GET /trash`` answer, byte for byte, the body the
experiment models give (``experiment_to_wire`` of the store's :class:`Experiment`), though the
routes build it from the rows without them. MADSci's client parses these bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import update

from labledger.core.lifecycle import ExperimentStatus
from labledger.core.models import (
    Experiment,
    ExperimentalCampaign,
    ExperimentDesign,
    ExperimentQuery,
    OwnershipInfo,
    ResourceInLocationCondition,
    experiment_to_wire,
)
from labledger.core.where import parse_where
from labledger.server.rendering import JSONBody
from labledger.storage.engine import write_transaction
from labledger.storage.sql import SqlStore
from labledger.storage.tables import experiments

START = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
OWNER = "01JA00000000000000000000AA"
PROJECT = "01JA00000000000000000000BB"
ODD_IDS = ["with,a comma", '"quoted"', "back\\slash", "ünïcode ✓"]


def _store_experiments(store: SqlStore) -> dict[str, str]:
    """Experiments with every kind of column: each status, null and set optional fields,
    timestamps with microseconds and other offsets, nested JSON, unicode, a campaign link,
    designs with and without resource conditions, imported odd JSON, trashed rows."""
    campaign = ExperimentalCampaign(campaign_name="wire", created_at=START)
    store.campaigns.insert(campaign, [])
    minus5 = timezone(timedelta(hours=-5))
    full = Experiment(
        status=ExperimentStatus.COMPLETED,
        experiment_design=ExperimentDesign(
            experiment_name='screen "2026" \\ ünïcode ✓',
            experiment_description="all compounds, </script> & more\nsecond line",
            ownership_info=OwnershipInfo(user_id=OWNER, project_id=PROJECT),
            parameters={"grid": {"t": [1, 2.5, None, True]}, "big": 2**53 + 1},
        ),
        ownership_info=OwnershipInfo(lab_id=OWNER, user_id=OWNER, project_id=PROJECT),
        run_name="run ✓ #1",
        run_description="a long\ndescription ß",
        started_at=datetime(2026, 2, 1, 9, 30, tzinfo=minus5),
        ended_at=START + timedelta(days=2, microseconds=7),
        created_at=datetime(2026, 2, 1, 9, 29, 59, 999999, tzinfo=minus5),
        updated_at=START + timedelta(days=3),
        campaign_id=campaign.campaign_id,
        parameters={"temperature_c": 25.5, "sample": "S001", "nested": {"empty": {}, "l": []}},
        metadata={"tags": ["a", "b"], "note": "ünï"},
        priority=-7,
        not_before=START + timedelta(hours=1),
        progress=0.25,
        attempts=3,
        version=9,
        worker_id="worker ✓ 1",
        claimed_at=START + timedelta(minutes=5, microseconds=1),
        lease_expires_at=START + timedelta(minutes=10),
    )
    conditions = Experiment(
        experiment_design=ExperimentDesign(
            experiment_name="with conditions",
            resource_conditions=[
                ResourceInLocationCondition(condition_type="resource_present", key=(1, "a"))
            ],
        ),
        created_at=START + timedelta(seconds=1),
    )
    bare = Experiment(experiment_design=None, created_at=START + timedelta(seconds=2))
    by_status = [
        Experiment(
            experiment_design=ExperimentDesign(experiment_name=f"status {status.value}"),
            status=status,
            created_at=START + timedelta(seconds=10 + n),
        )
        for n, status in enumerate(ExperimentStatus)
    ]
    odd = [
        Experiment(
            _id=odd_id,
            experiment_design=ExperimentDesign(experiment_name="odd id ünïcode"),
            campaign_id=campaign.campaign_id,
            created_at=START + timedelta(seconds=30 + n),
        )
        for n, odd_id in enumerate(ODD_IDS)
    ]
    imported = Experiment(
        experiment_design=ExperimentDesign(experiment_name="imported"),
        created_at=START + timedelta(seconds=40),
    )
    empty_design = Experiment(
        experiment_design=ExperimentDesign(experiment_name="emptied"),
        created_at=START + timedelta(seconds=41),
    )
    trashed = [
        Experiment(
            experiment_design=ExperimentDesign(experiment_name=f"trashed {n}"),
            created_at=START + timedelta(seconds=50 + n),
            deleted_at=START + timedelta(days=1, microseconds=n),
            status=ExperimentStatus.FAILED,
        )
        for n in range(3)
    ]
    store.experiments.insert_many(
        [full, conditions, bare, *by_status, *odd, imported, empty_design, *trashed], []
    )
    with write_transaction(store.engine) as conn:
        # as an import may have stored them: keys out of the model's order, nulls, keys the
        # model does not know, a design missing optional keys
        conn.execute(
            update(experiments).where(experiments.c.id == imported.experiment_id),
            {
                "ownership": {"workcell_id": OWNER, "user_id": None, "node_id": OWNER, "x": 1},
                "design": {
                    "parameters": {"b": 1, "a": [2]},
                    "unknown": "dropped",
                    "ownership_info": {"lab_id": OWNER, "user_id": OWNER, "step_id": None},
                    "experiment_name": "imported ✓",
                },
            },
        )
        conn.execute(
            update(experiments).where(experiments.c.id == empty_design.experiment_id),
            {"design": {}},
        )
    return {
        "full": full.experiment_id,
        "conditions": conditions.experiment_id,
        "bare": bare.experiment_id,
        "imported": imported.experiment_id,
        "empty_design": empty_design.experiment_id,
        "campaign": campaign.campaign_id,
        "trashed": trashed[0].experiment_id,
    }


def _model_body(store: SqlStore, query: ExperimentQuery) -> bytes:
    return bytes(JSONBody([experiment_to_wire(e) for e in store.experiments.find(query)]).body)


# (query string, the same query as the store's ExperimentQuery)
LISTS: list[tuple[str, dict[str, Any]]] = [
    ("", {}),
    ("?number=0", {"limit": 10_000}),
    ("?number=3&offset=2", {"limit": 3, "offset": 2}),
    ("?status=completed", {"statuses": [ExperimentStatus.COMPLETED]}),
    (
        "?status=planned,queued,failed&number=50",
        {
            "statuses": [
                ExperimentStatus.PLANNED,
                ExperimentStatus.QUEUED,
                ExperimentStatus.FAILED,
            ],
            "limit": 50,
        },
    ),
    ("?owner=" + OWNER, {"owner": OWNER}),
    ("?text=ünïcode&number=50", {"text": "ünïcode", "limit": 50}),
    ("?text=status&number=50", {"text": "status", "limit": 50}),
    ("?sort=name&number=50", {"sort": "name", "limit": 50}),
    ("?sort=-progress&number=50", {"sort": "-progress", "limit": 50}),
    (
        "?since=2026-03-01T12:00:05Z&number=50",
        {"since": START.replace(microsecond=0) + timedelta(seconds=5), "limit": 50},
    ),
    (
        "?where=parameters.sample=S001",
        {"where": [parse_where("parameters.sample=S001")]},
    ),
]


@pytest.mark.parametrize(
    ("path", "fields"),
    LISTS,
    ids=[
        "default",
        "all",
        "page",
        "status",
        "statuses",
        "owner",
        "text-unicode",
        "text",
        "by-name",
        "by-progress",
        "since",
        "where",
    ],
)
def test_the_experiment_list_is_the_body_the_models_give(
    api_and_store: tuple[TestClient, SqlStore], path: str, fields: dict[str, Any]
) -> None:
    api, store = api_and_store
    _store_experiments(store)
    answer = api.get(f"/experiments{path}")
    assert answer.status_code == 200, answer.text
    assert answer.json(), "the list compares something"
    assert answer.content == _model_body(store, ExperimentQuery(**fields))


def test_a_campaigns_experiment_list_is_the_body_the_models_give(
    api_and_store: tuple[TestClient, SqlStore],
) -> None:
    api, store = api_and_store
    campaign_id = _store_experiments(store)["campaign"]
    answer = api.get(f"/experiments?campaign_id={campaign_id}&number=50")
    assert answer.status_code == 200, answer.text
    assert len(answer.json()) == 1 + len(ODD_IDS)
    assert answer.content == _model_body(store, ExperimentQuery(campaign_id=campaign_id, limit=50))


@pytest.mark.parametrize("query", ["", "?number=2&offset=1"], ids=["all", "page"])
def test_the_trash_is_the_body_the_models_give(
    api_and_store: tuple[TestClient, SqlStore], query: str
) -> None:
    api, store = api_and_store
    _store_experiments(store)
    params = dict(p.split("=") for p in query.removeprefix("?").split("&") if p)
    limit, offset = int(params.get("number", 100)), int(params.get("offset", 0))
    answer = api.get(f"/trash{query}")
    assert answer.status_code == 200, answer.text
    assert all("deleted_at" in e for e in answer.json()) and answer.json()
    assert answer.content == _model_body(
        store, ExperimentQuery(limit=limit, offset=offset, deleted=True)
    )


def test_the_stored_odd_values_reach_the_body(api_and_store: tuple[TestClient, SqlStore]) -> None:
    # the comparisons above see these values, so they compare something
    api, store = api_and_store
    ids = _store_experiments(store)
    listed = {e["_id"]: e for e in api.get("/experiments?number=0").json()}
    assert set(ODD_IDS) <= set(listed)
    full = listed[ids["full"]]
    assert full["created_at"] == "2026-02-01T14:29:59.999999+00:00"
    assert full["claimed_at"] == "2026-03-01T12:05:00.123457+00:00"
    assert list(full["ownership_info"]) == ["user_id", "project_id", "lab_id"]
    assert full["experiment_design"]["ownership_info"] == {"user_id": OWNER, "project_id": PROJECT}
    assert full["parameters"]["nested"] == {"empty": {}, "l": []}
    assert full["priority"] == -7 and full["progress"] == 0.25 and "deleted_at" not in full
    # the resource condition's defaults are filled in by the models' dump
    (condition,) = listed[ids["conditions"]]["experiment_design"]["resource_conditions"]
    assert condition["condition_name"] == "A Condition" and condition["key"] == [1, "a"]
    assert listed[ids["bare"]]["experiment_design"] is None
    assert listed[ids["empty_design"]]["experiment_design"] is None
    imported = listed[ids["imported"]]
    assert imported["ownership_info"] == {"node_id": OWNER, "workcell_id": OWNER}
    assert imported["experiment_design"] == {
        "experiment_name": "imported ✓",
        "experiment_description": None,
        "resource_conditions": [],
        "ownership_info": {"user_id": OWNER, "lab_id": OWNER},
        "parameters": {"b": 1, "a": [2]},
    }
    statuses = {e["lifecycle_status"]: e["status"] for e in listed.values()}
    assert statuses["planned"] == "unknown" and statuses["queued"] == "unknown"
    assert statuses["paused"] == "paused"
    trash = api.get("/trash").json()
    assert ids["trashed"] in {e["_id"] for e in trash}
    assert ids["trashed"] not in listed


@pytest.mark.parametrize(
    "design",
    [
        {"experiment_name": "x", "ownership_info": {"user_id": "not a ULID"}},
        {"experiment_name": "x", "ownership_info": {"lab_id": 7}},
        {"experiment_name": ""},
        {"experiment_name": "x", "experiment_description": 5},
        {"experiment_name": "x", "parameters": None},
    ],
    ids=["owner-not-ulid", "owner-number", "empty-name", "number-description", "null-parameters"],
)
def test_a_stored_design_the_models_refuse_is_refused_alike(
    api_and_store: tuple[TestClient, SqlStore], design: dict[str, Any]
) -> None:
    # only an import or a hand edit stores such a design; the list raises what the models do
    _, store = api_and_store
    odd = Experiment(experiment_design=ExperimentDesign(experiment_name="odd"))
    store.experiments.insert(odd, [])
    with write_transaction(store.engine) as conn:
        conn.execute(
            update(experiments).where(experiments.c.id == odd.experiment_id), {"design": design}
        )
    with pytest.raises(ValidationError) as by_models:
        store.experiments.find(ExperimentQuery())
    with pytest.raises(ValidationError) as from_rows:
        store.experiments.find_wire(ExperimentQuery())
    assert from_rows.value.title == by_models.value.title == "ExperimentDesign"
    # the same errors, each naming its field, the value and what was expected
    assert str(from_rows.value) == str(by_models.value)
