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


def test_campaign_reopens_when_an_experiment_joins_and_refuses_after_cancel(
    api: TestClient,
) -> None:
    camp = api.post("/campaign", json={"campaign_name": "one by one", "experiment_ids": None})
    cid = camp.json()["campaign_id"]

    def start() -> str:
        body = {"experiment_design": {"experiment_name": "step"}, "campaign_id": cid}
        response = api.post("/experiment", json=body)
        assert response.status_code == 200, response.text
        exp_id: str = response.json()["_id"]
        return exp_id

    first = start()
    assert api.get(f"/campaign/{cid}").json()["status"] == "active"
    api.post(f"/experiment/{first}/end")
    done = api.get(f"/campaign/{cid}").json()
    assert done["status"] == "completed" and done["ended_at"] is not None
    second = start()  # as a MADSci client does: the next experiment of the same campaign
    reopened = api.get(f"/campaign/{cid}").json()
    assert reopened["status"] == "active" and reopened["ended_at"] is None
    api.post(f"/experiment/{second}/end")
    assert api.get(f"/campaign/{cid}").json()["status"] == "completed"
    assert api.post(f"/campaign/{cid}/cancel").status_code == 409  # completed cannot be cancelled
    third = start()
    assert api.post(f"/campaign/{cid}/cancel").status_code == 200
    assert api.get(f"/experiment/{third}").json()["status"] == "cancelled"
    refused = api.post(
        "/experiment", json={"experiment_design": {"experiment_name": "late"}, "campaign_id": cid}
    )
    assert refused.status_code == 409 and "cancelled" in refused.json()["detail"]


def test_campaign_experiment_ids_come_in_pages_with_their_count(api: TestClient) -> None:
    def new(**extra: str) -> str:
        body = {"experiment_design": {"experiment_name": "paged"}, **extra}
        response = api.post("/experiment", json=body)
        assert response.status_code == 200, response.text
        exp_id: str = response.json()["_id"]
        return exp_id

    a, _, c = new(), new(), new()
    body = {"campaign_name": "paged", "experiment_ids": [c, a]}
    cid = api.post("/campaign", json=body).json()["campaign_id"]
    d, e, f, g = (new(campaign_id=cid) for _ in range(4))
    assert api.delete(f"/experiment/{f}").status_code == 200
    everything = [c, a, d, e, g]  # declared first, then linked by creation; trash left out
    whole = api.get(f"/campaign/{cid}").json()
    assert whole["experiment_ids"] == everything and whole["experiment_count"] == 5
    for number in range(4):
        for offset in range(7):
            params = {"experiments_number": number, "experiments_offset": offset}
            page = api.get(f"/campaign/{cid}", params=params).json()
            assert page["experiment_ids"] == everything[offset : offset + number], params
            assert page["experiment_count"] == 5
    listed = api.get("/campaigns").json()[0]
    assert listed["experiment_ids"] == everything and listed["experiment_count"] == 5
    listed = api.get("/campaigns", params={"experiments_number": 2, "experiments_offset": 1})
    assert listed.json()[0]["experiment_ids"] == [a, d]
    # with more campaigns, each page is read for each campaign (one statement for them all)
    other = api.post("/campaign", json={"campaign_name": "other"}).json()["campaign_id"]
    others = [new(campaign_id=other) for _ in range(3)]
    empty = api.post("/campaign", json={"campaign_name": "empty"}).json()["campaign_id"]
    for size, offset in [(None, 0), (2, 1), (1, 3), (3, 9)]:
        params = {"experiments_offset": offset} | (
            {} if size is None else {"experiments_number": size}
        )
        end = None if size is None else offset + size
        pages = {
            c["campaign_id"]: c["experiment_ids"]
            for c in api.get("/campaigns", params=params).json()
        }
        assert pages == {cid: everything[offset:end], other: others[offset:end], empty: []}, params
    refused = api.get(f"/campaign/{cid}", params={"experiments_number": -1})
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "experiments_number"
