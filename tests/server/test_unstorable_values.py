"""Values no backend can store as given (lone surrogates, NUL, NaN, ±Infinity, 1e400) are
refused with 422 naming the field before anything is stored, the same way on SQLite and
PostgreSQL; and a list never fails because of one bad row already stored."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, update

from labledger.storage.tables import events, experiments

#: JSON text of each value, as a client would send it
TEXTS = {"surrogate": '"a\\udc00"', "nul": '"a\\u0000b"'}
NUMBERS = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity", "1e400": "1e400"}
VALUES = {**TEXTS, **NUMBERS}

DESIGN = '{"experiment_name": "e"}'

#: (method, path with {id}, JSON body with @ for the value, the field the answer must name)
ANYWHERE = [
    (
        "POST",
        "/experiment",
        '{"experiment_design": ' + DESIGN + ', "parameters": {"x": @}}',
        "parameters.x",
    ),
    (
        "POST",
        "/experiment",
        '{"experiment_design": {"experiment_name": "e", "parameters": {"deep": [1, {"y": @}]}}}',
        "experiment_design.parameters.deep.1.y",
    ),
    (
        "POST",
        "/experiment",
        '{"experiment_design": ' + DESIGN + ', "metadata": {"m": @}}',
        "metadata.m",
    ),
    ("POST", "/experiment/{id}/results", '{"values": {"yield": @}}', "values.yield"),
    ("POST", "/experiment/{id}/milestones", '{"name": "m", "data": {"a": @}}', "data.a"),
    ("POST", "/experiment/{id}/resources", '[{"resource_id": "r", "quantity": @}]', "0.quantity"),
    ("PATCH", "/experiment/{id}", '{"parameters": {"p": @}}', "parameters.p"),
]
NAMES = [
    (
        "POST",
        "/experiment",
        '{"experiment_design": {"experiment_name": @}}',
        "experiment_design.experiment_name",
    ),
    ("POST", "/experiment", '{"experiment_design": ' + DESIGN + ', "run_name": @}', "run_name"),
    ("POST", "/campaign", '{"campaign_name": @}', "campaign_name"),
    ("POST", "/experiment/{id}/milestones", '{"name": @}', "name"),
    ("POST", "/queue/claim", '{"worker_id": @}', "worker_id"),
]
CASES = [
    pytest.param(*case, value, id=f"{case[3]}-{name}")
    for case in ANYWHERE
    for name, value in VALUES.items()
] + [
    pytest.param(*case, value, id=f"{case[3]}-{name}")
    for case in NAMES
    for name, value in TEXTS.items()
]


def _counts(api: TestClient) -> tuple[int, int]:
    return api.get("/experiments/count").json()["count"], len(api.get("/events").json())


@pytest.mark.parametrize(("method", "path", "body", "field", "value"), CASES)
def test_an_unstorable_value_is_refused_naming_its_field_before_anything_is_stored(
    api: TestClient, method: str, path: str, body: str, field: str, value: str
) -> None:
    exp_id = api.post("/experiment", json={"experiment_design": {"experiment_name": "e"}}).json()[
        "_id"
    ]
    before = _counts(api)
    answer = api.request(
        method,
        path.replace("{id}", exp_id),
        content=body.replace("@", value).encode(),
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_input" and error["field"] == field, error
    assert _counts(api) == before
    assert api.get("/experiments").status_code == 200


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/experiments?text=a%00b", "text"),
        ("/experiments?campaign_id=a%00", "campaign_id"),
        ("/events?experiment_id=%00", "experiment_id"),
        ("/experiment/ab%00cd", "path"),
        ("/experiment/{id}/results/y%00", "path"),
    ],
)
def test_a_nul_in_a_filter_or_an_id_is_refused_naming_it(
    api: TestClient, path: str, field: str
) -> None:
    exp_id = api.post("/experiment", json={"experiment_design": {"experiment_name": "e"}}).json()[
        "_id"
    ]
    answer = api.get(path.replace("{id}", exp_id))
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == field


@pytest.mark.parametrize("field", ["digest", "worker_id"])
def test_a_nul_in_an_upload_form_field_is_refused(api: TestClient, field: str) -> None:
    exp_id = api.post("/experiment", json={"experiment_design": {"experiment_name": "e"}}).json()[
        "_id"
    ]
    answer = api.post(
        f"/experiment/{exp_id}/files/raw", files={"file": ("a.txt", b"x")}, data={field: "a\x00"}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == field
    assert api.get(f"/experiment/{exp_id}/results").json() == []


def test_lists_answer_with_rows_stored_before_such_values_were_refused(
    api: TestClient, db_url: str
) -> None:
    """Rows written by older versions or imports: the lists still answer, showing the bad
    values as missing (null, or U+FFFD for a lone surrogate)."""
    exp = api.post(
        "/experiment",
        json={"experiment_design": {"experiment_name": "bad row"}, "status": "queued"},
    ).json()
    engine = api.app.state.lab.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        if db_url.startswith("sqlite"):
            # SQLite's JSON kept whatever older versions wrote
            conn.exec_driver_sql(
                "UPDATE experiments SET parameters = ?, metadata = ?, progress = ? WHERE id = ?",
                ('{"s": "\\udc00", "n": NaN}', '{"i": Infinity}', float("nan"), exp["_id"]),
            )
            bad_data = '{"v": NaN, "s": "\\udc00"}'
            conn.exec_driver_sql(
                "INSERT INTO events (experiment_id, type, at, data) VALUES (?, 'updated', ?, ?)",
                (exp["_id"], datetime.now(UTC).isoformat(), bad_data),
            )
        else:
            # PostgreSQL's float columns take NaN and Infinity
            conn.execute(
                update(experiments)
                .where(experiments.c.id == exp["_id"])
                .values(progress=float("nan"))
            )
            conn.execute(
                insert(events).values(
                    experiment_id=exp["_id"], type="updated", at=datetime.now(UTC), data={}
                )
            )
    pages = ["/experiments", f"/experiment/{exp['_id']}", "/events", "/queue"]
    for path in pages:
        answer = api.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])
        assert "NaN" not in answer.text and "Infinity" not in answer.text
    for page in ("/ui/experiments", f"/ui/experiments/{exp['_id']}", "/ui/queue"):
        assert api.get(page).status_code == 200, page
    shown = api.get(f"/experiment/{exp['_id']}").json()
    assert shown["progress"] is None
    if db_url.startswith("sqlite"):
        assert shown["parameters"] == {"s": "\ufffd", "n": None}
        assert shown["metadata"] == {"i": None}
