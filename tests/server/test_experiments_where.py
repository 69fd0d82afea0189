"""``GET /experiments?where=...&sort=...`` on results, metrics (last value) and parameters, on
SQLite and PostgreSQL, and the 422 of a malformed expression."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

RUNS: dict[str, dict[str, Any]] = {
    # name: parameters, results, last loss
    "a": {"parameters": {"lr": 0.1, "opt": "adam", "warm": True}, "accuracy": 0.91, "loss": 0.05},
    "b": {"parameters": {"lr": 0.01, "opt": "sgd", "warm": False}, "accuracy": 0.85, "loss": 0.2},
    "c": {"parameters": {"lr": 0.001, "opt": "adamw"}, "accuracy": "n/a", "loss": 0.08},
    "d": {"parameters": {"lr": "auto"}, "accuracy": 0.97, "loss": None},
}


@pytest.fixture
def runs(api: TestClient) -> dict[str, str]:
    ids = {}
    for name, run in RUNS.items():
        body = {"experiment_design": {"experiment_name": name}, "parameters": run["parameters"]}
        exp_id = api.post("/experiment", json=body).json()["_id"]
        ids[name] = exp_id
        answer = api.post(
            f"/experiment/{exp_id}/results", json={"values": {"accuracy": run["accuracy"]}}
        )
        assert answer.status_code == 200
        if run["loss"] is not None:
            points = [{"name": "loss", "value": 1.0}, {"name": "loss", "value": run["loss"]}]
            assert api.post(f"/experiment/{exp_id}/metrics", json={"metrics": points}).is_success
    return ids


def _names(api: TestClient, **params: Any) -> list[str]:
    answer = api.get("/experiments", params={"number": 0, **params})
    assert answer.status_code == 200, answer.text
    count = api.get("/experiments/count", params={k: v for k, v in params.items() if k != "sort"})
    assert count.json()["count"] == len(answer.json())
    return [e["experiment_design"]["experiment_name"] for e in answer.json()]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (["metrics.loss<0.1"], {"a", "c"}),
        (["metrics.loss>=0.08"], {"b", "c"}),
        (["metrics.loss=0.2"], {"b"}),
        (["metrics.loss!=0.2"], {"a", "c"}),
        (["results.accuracy>0.9"], {"a", "d"}),
        (["results.accuracy=n/a"], {"c"}),
        (["results.accuracy~n/"], {"c"}),
        (["parameters.lr>=0.01"], {"a", "b"}),
        (["parameters.opt=adam"], {"a"}),
        (["parameters.opt~adam"], {"a", "c"}),
        (["parameters.opt!=adam"], {"b", "c"}),
        (["parameters.lr=auto"], {"d"}),
        (["parameters.warm=true"], {"a"}),
        (["parameters.lr>=0.01", "metrics.loss<0.1"], {"a"}),
        (["parameters.missing=1"], set()),
    ],
    ids=lambda v: ",".join(v) if isinstance(v, list) else None,
)
def test_where_filters_on_results_metrics_and_parameters(
    api: TestClient, runs: dict[str, str], where: list[str], expected: set[str]
) -> None:
    assert set(_names(api, where=where)) == expected


def test_sort_on_fields_puts_experiments_without_the_field_last(
    api: TestClient, runs: dict[str, str]
) -> None:
    assert _names(api, sort="-results.accuracy") == ["d", "a", "b", "c"]
    assert _names(api, sort="results.accuracy") == ["b", "a", "d", "c"]
    assert _names(api, sort="metrics.loss") == ["a", "c", "b", "d"]
    assert _names(api, sort="-metrics.loss") == ["b", "c", "a", "d"]
    assert _names(api, sort="parameters.lr") == ["c", "b", "a", "d"]
    assert _names(api, sort="-metrics.loss", where=["parameters.opt~adam"]) == ["c", "a"]
    # filtered and sorted on the same metric (a join walking its index)
    assert _names(api, sort="-metrics.loss", where=["metrics.loss<0.5"]) == ["b", "c", "a"]
    assert _names(api, sort="metrics.loss", where=["metrics.loss>0.06", "parameters.lr<0.05"]) == [
        "c",
        "b",
    ]
    page = api.get("/experiments", params={"sort": "metrics.loss", "number": 2, "offset": 1})
    assert [e["experiment_design"]["experiment_name"] for e in page.json()] == ["c", "b"]


@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"where": "loss<0.1"}, "where", "expected FIELD OP VALUE"),
        ({"where": "metrics.loss"}, "where", "expected FIELD OP VALUE"),
        ({"where": "metrics.loss<low"}, "where", "compares numbers"),
        ({"where": "scores.x=1"}, "where", "results.<name>, metrics.<name>, parameters.<name>"),
        ({"sort": "-metrics."}, "sort", "metrics.<name>"),
        ({"sort": "accuracy"}, "sort", "results.<name>"),
    ],
    ids=["no-namespace", "no-operator", "not-a-number", "namespace", "empty-name", "bare-sort"],
)
def test_malformed_expression_is_422_saying_what_was_expected(
    api: TestClient, params: dict[str, str], field: str, says: str
) -> None:
    for route in ("/experiments", "/experiments/count"):
        if route.endswith("count") and field == "sort":
            continue
        answer = api.get(route, params=params)
        assert answer.status_code == 422
        assert answer.json()["error"]["field"] == field
        assert says in answer.json()["detail"]
