"""``GET /campaigns`` and ``GET /campaign/{id}`` answer, byte for byte, the body the campaign
models give (``campaign_to_wire`` of the store's :class:`ExperimentalCampaign`), though the
routes build it from the rows without them. MADSci's client parses these bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from labledger.core.lifecycle import CampaignStatus
from labledger.core.models import (
    Experiment,
    ExperimentalCampaign,
    ExperimentDesign,
    OwnershipInfo,
    campaign_to_wire,
)
from labledger.server.app import create_app
from labledger.server.rendering import JSONBody
from labledger.settings import Settings
from labledger.storage.engine import create_db_engine, write_transaction
from labledger.storage.sql import SqlStore
from labledger.storage.tables import campaigns

START = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
ODD_IDS = ["with,a comma", '"quoted"', "back\\slash", "ünïcode ✓", "", "01JD000000000000000000000A"]


def _experiments(campaign_id: str | None, ids: list[str]) -> list[Experiment]:
    return [
        Experiment(
            _id=exp_id,
            experiment_design=ExperimentDesign(experiment_name="wire"),
            campaign_id=campaign_id,
            created_at=START + timedelta(seconds=n),
        )
        for n, exp_id in enumerate(ids)
    ]


def _store_campaigns(store: SqlStore) -> list[str]:
    """Campaigns with every kind of field: full ownership and none, null and set optional
    fields, timestamps with microseconds and other offsets, nested parameters, odd ids."""
    owner = "01JA00000000000000000000AA"
    declared = [f"01JB0000000000000000000{n:03d}" for n in range(3)]
    store.experiments.insert_many(_experiments(None, declared), [])
    full = ExperimentalCampaign(
        campaign_name='screen "2026" \\ ünïcode ✓\nsecond line',
        campaign_description="all compounds, </script> & more",
        experiment_ids=declared,
        ownership_info=OwnershipInfo(
            user_id=owner, project_id="01JA00000000000000000000BB", lab_id=owner
        ),
        created_at=datetime(2026, 2, 1, 9, 30, tzinfo=timezone(timedelta(hours=-5))),
        ended_at=START + timedelta(days=2, microseconds=7),
        status=CampaignStatus.COMPLETED,
        parameters={"grid": {"t": [1, 2.5, None, True]}, "name": "ß", "big": 2**53 + 1},
        metadata={"tags": ["a", "b"], "nested": {"empty": {}, "list": []}},
        updated_at=START + timedelta(days=3),
        version=4,
    )
    bare = ExperimentalCampaign(campaign_name="bare", created_at=START)
    odd = ExperimentalCampaign(campaign_name="odd ids", created_at=START + timedelta(hours=1))
    for campaign in (full, bare, odd):
        store.campaigns.insert(campaign, [])
    store.experiments.insert_many(
        _experiments(full.campaign_id, ["01JC000000000000000000000X"]), []
    )
    store.experiments.insert_many(_experiments(odd.campaign_id, ODD_IDS), [])
    # an imported ownership: keys out of the model's order, a null and a key it does not know
    imported = {"workcell_id": owner, "user_id": None, "node_id": owner, "colour": "blue"}
    with write_transaction(store.engine) as conn:
        conn.execute(
            update(campaigns).where(campaigns.c.id == odd.campaign_id), {"ownership": imported}
        )
    return [full.campaign_id, bare.campaign_id, odd.campaign_id]


def _model_body(value: object) -> bytes:
    return bytes(JSONBody(value).body)


@pytest.mark.parametrize(
    "query",
    ["", "?experiments_number=2", "?experiments_number=3&experiments_offset=2", "?number=2"],
    ids=["default", "two-ids", "ids-page", "two-campaigns"],
)
def test_the_campaign_list_is_the_body_the_models_give(
    api_and_store: tuple[TestClient, SqlStore], query: str
) -> None:
    api, store = api_and_store
    _store_campaigns(store)
    params = dict(p.split("=") for p in query.removeprefix("?").split("&") if p)
    number = int(params.get("number", 100))
    ids_limit = int(params.get("experiments_number", 100))
    ids_offset = int(params.get("experiments_offset", 0))
    models = store.campaigns.find(number, 0, ids_limit=ids_limit, ids_offset=ids_offset)
    answer = api.get(f"/campaigns{query}")
    assert answer.status_code == 200, answer.text
    assert answer.content == _model_body([campaign_to_wire(c) for c in models])


def test_each_campaign_is_the_body_its_model_gives(
    api_and_store: tuple[TestClient, SqlStore],
) -> None:
    api, store = api_and_store
    for campaign_id in _store_campaigns(store):
        for query, limit, offset in (
            ("", None, 0),
            ("?experiments_number=1&experiments_offset=1", 1, 1),
        ):
            model = store.campaigns.get(campaign_id, ids_limit=limit, ids_offset=offset)
            answer = api.get(f"/campaign/{campaign_id}{query}")
            assert answer.status_code == 200, answer.text
            assert answer.content == _model_body(campaign_to_wire(model)), campaign_id


def test_the_stored_odd_values_reach_the_body(api_and_store: tuple[TestClient, SqlStore]) -> None:
    # the comparisons above see these values, so they compare something
    api, store = api_and_store
    full_id, bare_id, odd_id = _store_campaigns(store)
    listed = {c["campaign_id"]: c for c in api.get("/campaigns").json()}
    assert listed[odd_id]["experiment_ids"] == ODD_IDS
    owner = "01JA00000000000000000000AA"
    assert listed[odd_id]["ownership_info"] == {"node_id": owner, "workcell_id": owner}
    assert list(listed[full_id]["ownership_info"]) == ["user_id", "project_id", "lab_id"]
    assert listed[full_id]["created_at"] == "2026-02-01T14:30:00+00:00"
    assert listed[full_id]["experiment_count"] == 4
    assert listed[bare_id]["campaign_description"] is None
    assert listed[bare_id]["ended_at"] is None and listed[bare_id]["ownership_info"] == {}


def test_a_missing_campaign_is_still_the_one_error_body(
    api_and_store: tuple[TestClient, SqlStore],
) -> None:
    api, _ = api_and_store
    answer = api.get("/campaign/01JZ0000000000000000000000")
    assert answer.status_code == 404
    assert answer.json()["error"]["campaign_id"] == "01JZ0000000000000000000000"


def test_the_campaign_list_is_in_utc_whatever_the_session_time_zone(
    pg_url: str, tmp_path: Path
) -> None:
    """PostgreSQL hands timestamps over in the session's time zone: the list, read through the
    driver's own rows, still answers them in UTC, as the models do."""
    engine = create_db_engine(pg_url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        database = conn.exec_driver_sql("SELECT current_database()").scalar()
        conn.exec_driver_sql(f"ALTER DATABASE \"{database}\" SET timezone TO 'Asia/Kolkata'")
    engine.dispose()
    app = create_app(Settings(db_url=pg_url, data_dir=tmp_path))
    with TestClient(app) as api:
        store = SqlStore(create_db_engine(pg_url))
        _store_campaigns(store)
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW timezone").scalar() == "Asia/Kolkata"
        models = store.campaigns.find(100, 0, ids_limit=100)
        answer = api.get("/campaigns")
        store.engine.dispose()
    assert answer.status_code == 200, answer.text
    assert answer.content == _model_body([campaign_to_wire(c) for c in models])
    assert b"+00:00" in answer.content and b"+05:30" not in answer.content
