"""The MADSci-compatible experiment routes and labledger's extensions, over real HTTP semantics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

DESIGN = {
    "experiment_name": "Compound screen",
    "experiment_description": "Screen compounds for activity",
    "resource_conditions": [
        {"condition_type": "resource_present", "location_name": "deck", "key": 0},
        {
            "condition_type": "resource_field_check",
            "resource_name": "plate",
            "field": "volume",
            "operator": "is_greater_than",
            "target_value": 10,
        },
    ],
    "ownership_info": {"user_id": "01JC0000000000000000000001"},
}


def start(api: TestClient, **extra: Any) -> dict[str, Any]:
    body = {"experiment_design": DESIGN, "run_name": "run", "run_description": None, **extra}
    response = api.post("/experiment", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def test_post_and_get_round_trip_in_madsci_shape(api: TestClient) -> None:
    exp = start(api)
    assert len(exp["_id"]) == 26 and "experiment_id" not in exp
    assert exp["status"] == "in_progress" == exp["lifecycle_status"]
    assert exp["experiment_design"]["resource_conditions"][1]["operator"] == "is_greater_than"
    assert exp["ownership_info"]["user_id"] == "01JC0000000000000000000001"
    started = datetime.fromisoformat(exp["started_at"])
    assert started.utcoffset() == timedelta(0)
    got = api.get(f"/experiment/{exp['_id']}").json()
    assert got == exp


def test_extra_keys_in_body_do_not_choose_id_or_status(api: TestClient) -> None:
    exp = start(api, _id="01JC0000000000000000000009", status="in_progress")
    assert exp["_id"] != "01JC0000000000000000000009"


def test_list_is_a_bare_array_newest_first_limited_by_number(api: TestClient) -> None:
    ids = [start(api)["_id"] for _ in range(5)]
    listed = api.get("/experiments", params={"number": 3}).json()
    assert isinstance(listed, list)
    assert [e["_id"] for e in listed] == ids[::-1][:3]
    assert len(api.get("/experiments").json()) == 5
    page2 = api.get("/experiments", params={"number": 2, "offset": 2}).json()
    assert [e["_id"] for e in page2] == ids[::-1][2:4]


def test_list_filters_by_status_campaign_owner_text_and_time(api: TestClient) -> None:
    camp = api.post("/campaign", json={"campaign_name": "c", "experiment_ids": None}).json()
    a = start(api, campaign_id=camp["campaign_id"])
    b = start(api, status="queued")
    api.post(f"/experiment/{a['_id']}/pause")
    other = api.post(
        "/experiment",
        json={"experiment_design": {"experiment_name": "Calibration"}, "run_name": "zeta"},
    ).json()

    def ids(**params: Any) -> set[str]:
        response = api.get("/experiments", params=params)
        assert response.status_code == 200, response.text
        return {e["_id"] for e in response.json()}

    assert ids(status="paused") == {a["_id"]}
    assert ids(status="queued,paused") == {a["_id"], b["_id"]}
    assert ids(status=["queued", "in_progress"]) == {b["_id"], other["_id"]}
    assert ids(campaign_id=camp["campaign_id"]) == {a["_id"]}
    assert ids(owner="01JC0000000000000000000001") == {a["_id"], b["_id"]}
    assert ids(text="calib") == {other["_id"]}
    assert ids(text="ZETA") == {other["_id"]}
    assert ids(text="100%") == set()
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert ids(since=future) == set()
    assert ids(until=future) == {a["_id"], b["_id"], other["_id"]}
    count = api.get("/experiments/count", params={"status": "paused"}).json()
    assert count == {"count": 1}


def test_lifecycle_routes_follow_the_table(api: TestClient) -> None:
    exp_id = start(api)["_id"]
    assert api.post(f"/experiment/{exp_id}/pause").json()["status"] == "paused"
    assert api.post(f"/experiment/{exp_id}/continue").json()["status"] == "in_progress"
    ended = api.post(f"/experiment/{exp_id}/end").json()
    assert ended["status"] == "completed" and ended["ended_at"] is not None
    refused = api.post(f"/experiment/{exp_id}/continue")
    assert refused.status_code == 409
    body = refused.json()
    assert "'completed'" in body["detail"] and "'in_progress'" in body["detail"]
    assert body["error"]["code"] == "illegal_transition"
    assert body["error"]["current_status"] == "completed"
    assert body["error"]["requested_status"] == "in_progress"


@pytest.mark.parametrize(
    ("route", "status"),
    [("cancel", "cancelled"), ("fail", "failed"), ("end", "completed")],
)
def test_every_terminal_route_sets_ended_at(api: TestClient, route: str, status: str) -> None:
    exp_id = start(api)["_id"]
    ended = api.post(f"/experiment/{exp_id}/{route}").json()
    assert ended["status"] == status and ended["ended_at"] is not None


@pytest.mark.parametrize("encoding", ["failed", "ExperimentStatus.FAILED"])
def test_end_honours_status_in_both_madsci_encodings(api: TestClient, encoding: str) -> None:
    exp_id = start(api)["_id"]
    ended = api.post(f"/experiment/{exp_id}/end", params={"status": encoding})
    assert ended.json()["status"] == "failed"


def test_end_with_empty_status_completes_and_bad_status_is_422(api: TestClient) -> None:
    exp_id = start(api)["_id"]
    bad = api.post(f"/experiment/{exp_id}/end", params={"status": "paused"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "status"
    worse = api.post(f"/experiment/{exp_id}/end", params={"status": "finished"})
    assert worse.status_code == 422 and "finished" in worse.json()["detail"]
    assert api.post(f"/experiment/{exp_id}/end?status=").json()["status"] == "completed"


def test_cancelled_experiment_cannot_be_ended(api: TestClient) -> None:
    exp_id = start(api)["_id"]
    api.post(f"/experiment/{exp_id}/cancel")
    refused = api.post(f"/experiment/{exp_id}/end")
    assert refused.status_code == 409
    assert "'cancelled'" in refused.json()["detail"] and "'completed'" in refused.json()["detail"]


def test_queued_experiment_reads_unknown_to_madsci_and_queued_in_lifecycle(api: TestClient) -> None:
    exp = start(api, status="queued")
    assert exp["status"] == "unknown" and exp["lifecycle_status"] == "queued"
    assert exp["started_at"] is None
    started = api.post(f"/experiment/{exp['_id']}/start").json()
    assert started["status"] == "in_progress" and started["started_at"] is not None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "experiment_design"),
        ({"experiment_design": {}}, "experiment_design.experiment_name"),
        ({"experiment_design": {"experiment_name": ""}}, "experiment_design.experiment_name"),
        (
            {"experiment_design": {"experiment_name": "x", "ownership_info": {"user_id": "bob"}}},
            "experiment_design.ownership_info.user_id",
        ),
        (
            {"experiment_design": {"experiment_name": "x", "resource_conditions": [{}]}},
            "experiment_design.resource_conditions.0",
        ),
        ({"experiment_design": {"experiment_name": "x"}, "status": "completed"}, "status"),
        (
            {"experiment_design": {"experiment_name": "x"}, "not_before": "2026-01-01T00:00:00"},
            "not_before",
        ),
    ],
    ids=[
        "no-design",
        "no-name",
        "empty-name",
        "bad-ulid",
        "no-condition-type",
        "bad-status",
        "naive-time",
    ],
)
def test_bad_registration_is_422_naming_the_field(
    sqlite_api: TestClient, body: dict[str, Any], field: str
) -> None:
    response = sqlite_api.post("/experiment", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["field"].startswith(field), error
    assert response.json()["detail"].startswith(error["field"])


def test_bad_query_values_are_422_naming_the_parameter(sqlite_api: TestClient) -> None:
    for params, field in [
        ({"number": "ten"}, "number"),
        ({"number": -1}, "number"),
        ({"status": "running"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-01-01T00:00:00"}, "since"),
    ]:
        response = sqlite_api.get("/experiments", params=params)
        assert response.status_code == 422, (params, response.text)
        assert field in response.json()["detail"], response.json()


def test_missing_experiment_is_404_with_madsci_detail(sqlite_api: TestClient) -> None:
    for method, path in [
        ("GET", "/experiment/nope"),
        ("POST", "/experiment/nope/pause"),
        ("PATCH", "/experiment/nope"),
        ("DELETE", "/experiment/nope"),
    ]:
        kwargs: dict[str, Any] = {"json": {"run_name": "x"}} if method == "PATCH" else {}
        response = sqlite_api.request(method, path, **kwargs)
        assert response.status_code == 404
        assert response.json()["detail"] == "Experiment not found: nope"
        assert response.json()["error"]["experiment_id"] == "nope"


def test_patch_updates_and_rejects_unknown_fields(api: TestClient) -> None:
    exp_id = start(api)["_id"]
    patched = api.patch(
        f"/experiment/{exp_id}",
        json={"run_name": "renamed", "parameters": {"lr": 0.1}, "metadata": {"note": "ok"}},
    )
    assert patched.status_code == 200
    data = patched.json()
    assert (data["run_name"], data["parameters"], data["metadata"]) == (
        "renamed",
        {"lr": 0.1},
        {"note": "ok"},
    )
    assert data["version"] == 2
    bad = api.patch(f"/experiment/{exp_id}", json={"status": "completed"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "status"


def test_delete_moves_to_trash_then_restore_and_purge(api: TestClient) -> None:
    exp_id = start(api)["_id"]
    assert api.delete(f"/experiment/{exp_id}").status_code == 200
    assert api.get(f"/experiment/{exp_id}").status_code == 404
    assert exp_id not in {e["_id"] for e in api.get("/experiments").json()}
    assert [e["_id"] for e in api.get("/trash").json()] == [exp_id]
    events = api.get(f"/experiment/{exp_id}/events").json()
    assert [e["type"] for e in events] == ["created", "deleted"]
    assert api.post(f"/trash/{exp_id}/restore").json()["_id"] == exp_id
    assert api.get(f"/experiment/{exp_id}").status_code == 200
    assert api.delete(f"/trash/{exp_id}").status_code == 409
    api.delete(f"/experiment/{exp_id}")
    assert api.delete(f"/trash/{exp_id}").status_code == 204
    assert api.get("/trash").json() == []


def test_event_log_records_actor_and_states(api: TestClient) -> None:
    exp_id = start(api)["_id"]
    api.post(f"/experiment/{exp_id}/pause", headers={"X-Labledger-Actor": "robot-7"})
    events = api.get(f"/experiment/{exp_id}/events").json()
    assert events[-1]["actor"] == "robot-7"
    assert (events[-1]["from_status"], events[-1]["to_status"]) == ("in_progress", "paused")
    later = api.get(f"/experiment/{exp_id}/events", params={"after": events[0]["event_id"]}).json()
    assert later == events[1:]
