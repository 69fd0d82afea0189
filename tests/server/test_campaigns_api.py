"""The campaign routes the MADSci 0.8.1 client calls."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_register_get_and_list_campaigns_in_madsci_shape(api: TestClient) -> None:
    exp = api.post("/experiment", json={"experiment_design": {"experiment_name": "a"}}).json()
    body = {
        "campaign_name": "Screen 2026",
        "campaign_description": "all compounds",
        "experiment_ids": [exp["_id"]],
        "ownership_info": {},
    }
    created = api.post("/campaign", json=body)
    assert created.status_code == 200, created.text
    camp = created.json()
    assert camp["experiment_ids"] == [exp["_id"]]
    assert camp["campaign_name"] == "Screen 2026" and len(camp["campaign_id"]) == 26
    assert camp["status"] == "planned" and camp["ended_at"] is None
    assert api.get(f"/campaign/{camp['campaign_id']}").json() == camp
    listed = api.get("/campaigns").json()
    assert [c["campaign_id"] for c in listed] == [camp["campaign_id"]]
    assert api.get(f"/experiment/{exp['_id']}").json()["campaign_id"] == camp["campaign_id"]


def test_campaign_without_experiment_ids_still_answers_a_list(api: TestClient) -> None:
    camp = api.post("/campaign", json={"campaign_name": "empty", "experiment_ids": None}).json()
    assert camp["experiment_ids"] == []
    assert api.get("/campaigns").json()[0]["experiment_ids"] == []


def test_campaign_errors_name_the_field(sqlite_api: TestClient) -> None:
    missing = sqlite_api.post("/campaign", json={"experiment_ids": []})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "campaign_name"
    ghost = sqlite_api.post(
        "/campaign", json={"campaign_name": "x", "experiment_ids": ["01JC0000000000000000000000"]}
    )
    assert ghost.status_code == 422 and ghost.json()["error"]["field"] == "experiment_ids"
    assert sqlite_api.get("/campaign/01JC0000000000000000000000").status_code == 404
