"""Every integer a query takes is bounded: a value out of range answers 422 with the one error
body naming the parameter, never 500 (SQLite's OverflowError) or 503 (PostgreSQL's
NumericValueOutOfRange), on both backends."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from labledger.server.routes.experiments import MAX_OFFSET, MAX_PAGE

HUGE = [2**63 - 1, 2**63, 2**64, 10**30, -1, -(2**63) - 1]


def _integer_query_parameters(api: TestClient) -> list[tuple[str, str]]:
    spec: dict[str, Any] = api.get("/openapi.json").json()
    found = []
    for path, methods in spec["paths"].items():
        operation = methods.get("get")
        if operation is None:
            continue
        for param in operation.get("parameters", []):
            schema = param.get("schema", {})
            types = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
            if param["in"] == "query" and "integer" in types:
                found.append((path, param["name"]))
    return found


def _fill(path: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    return path.replace("{name}", "y").replace("{resource_id}", "r1")


def test_every_integer_query_parameter_answers_422_out_of_range(api: TestClient) -> None:
    campaign = api.post("/campaign", json={"campaign_name": "c"}).json()
    exp = api.post(
        "/experiment",
        json={
            "experiment_design": {"experiment_name": "e"},
            "campaign_id": campaign["campaign_id"],
        },
    ).json()
    api.post(f"/experiment/{exp['_id']}/results", json={"values": {"y": 1}})
    ids = {"experiment_id": exp["_id"], "campaign_id": campaign["campaign_id"]}
    parameters = _integer_query_parameters(api)
    assert ("/experiments", "offset") in parameters and ("/events", "after") in parameters
    for path, name in parameters:
        for value in HUGE:
            answer = api.get(_fill(path, ids), params={name: value})
            assert answer.status_code in (200, 422), (path, name, value, answer.text)
            if answer.status_code == 422:
                assert answer.json()["error"]["field"] == name, answer.text


@pytest.mark.parametrize("status", ["queued,paused", "queued", None])
def test_the_largest_offset_of_a_list_answers_an_empty_page(
    api: TestClient, status: str | None
) -> None:
    api.post("/experiment", json={"experiment_design": {"experiment_name": "e"}})
    params: dict[str, Any] = {"offset": MAX_OFFSET, "number": MAX_PAGE}
    if status:
        params["status"] = status
    assert api.get("/experiments", params=params).json() == []
    params["offset"] = 9223372036854775807  # the report: 500 on SQLite, 503 on PostgreSQL
    refused = api.get("/experiments", params=params)
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "offset"


def test_a_page_of_the_web_ui_past_any_offset_is_refused(api: TestClient) -> None:
    answer = api.get("/ui/experiments", params={"page": 10**18, "status": "queued,paused"})
    assert answer.status_code == 422, answer.text[:300]
