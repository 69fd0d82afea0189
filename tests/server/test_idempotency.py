"""Idempotency-Key: a retried create returns the first answer and never makes a second record."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from labledger.client import ExperimentClient
from labledger.server.app import create_app
from labledger.settings import Settings
from labledger_fixtures import LiveServerFactory

DESIGN = {"experiment_design": {"experiment_name": "titration"}}


@pytest.fixture
def api(sqlite_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(db_url=sqlite_url, data_dir=tmp_path))) as client:
        yield client


def _key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def test_a_repeated_create_returns_the_first_answer_and_creates_nothing(api: TestClient) -> None:
    key = _key()
    first = api.post("/experiment", json=DESIGN, headers=key)
    again = api.post("/experiment", json=DESIGN, headers=key)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert api.get("/experiments/count").json() == {"count": 1}
    events = api.get(f"/experiment/{first.json()['_id']}/events").json()
    assert [e["type"] for e in events] == ["created"]


def test_the_replay_is_the_first_answer_even_after_the_record_changed(api: TestClient) -> None:
    key = _key()
    first = api.post("/experiment", json=DESIGN, headers=key).json()
    api.post(f"/experiment/{first['_id']}/pause")
    again = api.post("/experiment", json=DESIGN, headers=key).json()
    assert again == first
    assert again["lifecycle_status"] == "in_progress"


def test_without_a_key_each_post_creates(api: TestClient) -> None:
    api.post("/experiment", json=DESIGN)
    api.post("/experiment", json=DESIGN)
    assert api.get("/experiments/count").json() == {"count": 2}


def test_a_key_reused_for_another_request_is_refused_naming_the_header(api: TestClient) -> None:
    key = _key()
    api.post("/experiment", json=DESIGN, headers=key)
    other = {"experiment_design": {"experiment_name": "other"}}
    refused = api.post("/experiment", json=other, headers=key)
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "Idempotency-Key"
    assert "different request" in refused.json()["detail"]
    assert api.get("/experiments/count").json() == {"count": 1}


def test_an_overlong_key_is_refused(api: TestClient) -> None:
    refused = api.post("/experiment", json=DESIGN, headers={"Idempotency-Key": "k" * 201})
    assert refused.status_code == 422
    assert "200 characters" in refused.json()["detail"]
    assert api.get("/experiments/count").json() == {"count": 0}


def test_a_failed_create_does_not_use_up_the_key(api: TestClient) -> None:
    key = _key()
    bad = {
        "experiment_design": {"experiment_name": "x"},
        "campaign_id": "01JAAAAAAAAAAAAAAAAAAAAAAA",
    }
    assert api.post("/experiment", json=bad, headers=key).status_code == 404
    campaign = api.post("/campaign", json={"campaign_name": "c"}).json()
    good = {**bad, "campaign_id": campaign["campaign_id"]}
    # the same key, now with a body that works: a different request, so refused? No: the first
    # attempt created nothing and kept nothing, so the key is still free.
    assert api.post("/experiment", json=good, headers=key).status_code == 200
    assert api.get("/experiments/count").json() == {"count": 1}


def test_a_retried_campaign_registration_replays_instead_of_409(api: TestClient) -> None:
    key = _key()
    body = {"campaign_name": "screen", "campaign_id": "01JBBBBBBBBBBBBBBBBBBBBBBB"}
    first = api.post("/campaign", json=body, headers=key)
    again = api.post("/campaign", json=body, headers=key)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    # the same body without the key is a new request, and the id is taken
    assert api.post("/campaign", json=body).status_code == 409


def test_keys_of_different_tokens_do_not_meet(api: TestClient) -> None:
    root = api.post("/tokens", json={"name": "root", "scope": "admin"}).json()["secret"]
    other = api.post(
        "/tokens",
        json={"name": "other", "scope": "write"},
        headers={"Authorization": f"Bearer {root}"},
    ).json()["secret"]
    key = _key()
    a = api.post("/experiment", json=DESIGN, headers={**key, "Authorization": f"Bearer {root}"})
    b = api.post("/experiment", json=DESIGN, headers={**key, "Authorization": f"Bearer {other}"})
    assert a.json()["_id"] != b.json()["_id"]
    assert "Idempotent-Replayed" not in b.headers


@pytest.mark.slow
def test_concurrent_retries_over_real_http_create_exactly_one(
    live_server: LiveServerFactory, db_url: str
) -> None:
    """Twelve copies of one request race each other on a real server: one record, one answer."""
    server = live_server(db_url)
    key = _key()
    answers: list[httpx.Response] = []
    barrier = threading.Barrier(12)

    def post() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            barrier.wait()
            answers.append(http.post("experiment", json=DESIGN, headers=key))

    threads = [threading.Thread(target=post) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200] * 12, [a.text for a in answers]
    assert len({a.json()["_id"] for a in answers}) == 1
    assert len({a.text for a in answers}) == 1
    with httpx.Client(base_url=server.url) as http:
        assert http.get("experiments/count").json() == {"count": 1}


@pytest.mark.slow
def test_concurrent_creates_with_keys_and_twins_each_create_once(
    live_server: LiveServerFactory, db_url: str
) -> None:
    """Creates with keys of their own race twins of one key (committed together by the
    server's shared transactions): each key makes one record, the twins share one answer."""
    server = live_server(db_url)
    twin_key = _key()
    keys = [twin_key] * 6 + [_key() for _ in range(10)]
    answers: dict[int, httpx.Response] = {}
    barrier = threading.Barrier(len(keys))

    def post(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            barrier.wait()
            answers[n] = http.post("experiment", json=DESIGN, headers=keys[n])

    threads = [threading.Thread(target=post, args=(n,)) for n in range(len(keys))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [answers[n].status_code for n in range(len(keys))] == [200] * len(keys)
    ids = [answers[n].json()["_id"] for n in range(len(keys))]
    assert len(set(ids[:6])) == 1  # the twins
    assert len(set(ids)) == 11
    with httpx.Client(base_url=server.url) as http:
        assert http.get("experiments/count").json() == {"count": 11}
        for n in (0, 7):  # a retry of either kind replays its first answer
            again = http.post("experiment", json=DESIGN, headers=keys[n])
            assert again.json()["_id"] == ids[n]


@pytest.mark.parametrize("kind", ["experiment", "campaign"])
def test_our_client_retrying_after_a_lost_answer_creates_one(
    live_server: LiveServerFactory, kind: str
) -> None:
    """The first answer is lost on the way back (a proxy answers 503 after the server acted);
    the client tries again with the same key and gets the record the first attempt made."""
    server = live_server()
    real = httpx.HTTPTransport()
    seen: list[httpx.Request] = []

    class LosesFirstAnswer(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request)
            response = real.handle_request(request)
            if len(seen) == 1:
                response.read()
                response.close()
                return httpx.Response(503, json={"detail": "proxy: upstream timed out"})
            return response

    with real, ExperimentClient(server.url, transport=LosesFirstAnswer()) as client:
        if kind == "experiment":
            made = client.start_experiment({"experiment_name": "retry me"}).experiment_id
            listed = [e.experiment_id for e in client.get_experiments(number=50)]
        else:
            made = client.register_campaign({"campaign_name": "retry me"}).campaign_id
            listed = [c.campaign_id for c in client.get_campaigns()]
    keys = {r.headers.get("Idempotency-Key") for r in seen if r.method == "POST"}
    assert len([r for r in seen if r.method == "POST"]) == 2
    assert len(keys) == 1 and None not in keys
    assert listed == [made]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("results", {"values": {"yield": 0.93}}, id="results"),
        pytest.param("milestones", {"name": "half-way", "progress": 0.5}, id="milestone"),
    ],
)
def test_a_repeated_result_or_milestone_post_is_recorded_once(
    api: TestClient, path: str, body: dict[str, object]
) -> None:
    exp_id = api.post("/experiment", json=DESIGN).json()["_id"]
    key = _key()
    first = api.post(f"/experiment/{exp_id}/{path}", json=body, headers=key)
    assert first.is_success, first.text
    events_before = api.get(f"/experiment/{exp_id}/events").json()
    again = api.post(f"/experiment/{exp_id}/{path}", json=body, headers=key)
    assert again.status_code == first.status_code
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.get(f"/experiment/{exp_id}/events").json() == events_before
    if path == "milestones":
        assert len(api.get(f"/experiment/{exp_id}/milestones").json()) == 1


def test_a_retried_upload_with_a_new_multipart_boundary_is_the_same_request(
    api: TestClient,
) -> None:
    exp_id = api.post("/experiment", json=DESIGN).json()["_id"]
    key = _key()
    answers = [
        api.post(
            f"/experiment/{exp_id}/files/spectrum",
            files={"file": ("s.csv", b"1,2,3\n")},
            headers=key,
        )
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [201, 201], answers[1].text
    assert answers[1].json() == answers[0].json()
    assert answers[1].headers["Idempotent-Replayed"] == "true"
    events = api.get(f"/experiment/{exp_id}/events").json()
    assert len(events) == 2  # created, and one result


def test_a_key_older_than_idempotency_hours_is_free_again(sqlite_url: str, tmp_path: Path) -> None:
    from sqlalchemy import update

    from labledger.storage.engine import create_db_engine
    from labledger.storage.tables import idempotency_keys

    app = create_app(Settings(db_url=sqlite_url, data_dir=tmp_path, idempotency_hours=1))
    with TestClient(app) as client:
        key = _key()
        first = client.post("/experiment", json=DESIGN, headers=key).json()
        engine = create_db_engine(sqlite_url)
        try:
            with engine.begin() as conn:
                two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
                conn.execute(update(idempotency_keys).values(created_at=two_hours_ago))
        finally:
            engine.dispose()
        later = client.post("/experiment", json=DESIGN, headers=key)
        assert later.status_code == 200
        assert later.json()["_id"] != first["_id"]
        assert "Idempotent-Replayed" not in later.headers


@pytest.mark.parametrize("kind", ["experiment", "campaign"])
def test_when_the_answer_was_never_kept_a_retry_gets_the_record_as_it_is(
    sqlite_url: str, tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server died between committing the record and keeping its answer."""
    from sqlalchemy import update

    from labledger.server import idempotency

    monkeypatch.setattr(idempotency, "WAIT_SECONDS", 0.3)  # how long a retry waits for it

    from labledger.storage.engine import create_db_engine
    from labledger.storage.tables import idempotency_keys

    app = create_app(Settings(db_url=sqlite_url, data_dir=tmp_path))
    path, body = (
        ("/experiment", DESIGN) if kind == "experiment" else ("/campaign", {"campaign_name": "c"})
    )
    with TestClient(app) as client:
        key = _key()
        first = client.post(path, json=body, headers=key).json()
        engine = create_db_engine(sqlite_url)
        try:
            with engine.begin() as conn:
                conn.execute(update(idempotency_keys).values(status_code=None, response_body=None))
        finally:
            engine.dispose()
        again = client.post(path, json=body, headers=key)
        count = client.get("/experiments/count" if kind == "experiment" else "/campaigns").json()
    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    id_field = "_id" if kind == "experiment" else "campaign_id"
    assert again.json()[id_field] == first[id_field]
    if kind == "experiment":
        assert count == {"count": 1}
    else:
        assert len(count) == 1
