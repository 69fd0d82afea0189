"""Access control over real HTTP through the real app: tokens, scopes, trusted networks."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from labledger.server.app import create_app
from labledger.settings import Settings
from labledger.storage.access_sql import TokenStore
from labledger.storage.engine import create_db_engine

DESIGN = {"experiment_design": {"experiment_name": "titration"}}


def _app(db_url: str, tmp_path: Path, **settings: Any) -> TestClient:
    return TestClient(create_app(Settings(db_url=db_url, data_dir=tmp_path, **settings)))


@pytest.fixture
def open_api(sqlite_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with _app(sqlite_url, tmp_path) as client:
        yield client


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _make(client: TestClient, name: str, scope: str, secret: str | None = None) -> str:
    headers = _bearer(secret) if secret else {}
    response = client.post("/tokens", json={"name": name, "scope": scope}, headers=headers)
    assert response.status_code == 201, response.text
    value: str = response.json()["secret"]
    return value


def test_without_tokens_everyone_may_do_everything(open_api: TestClient) -> None:
    created = open_api.post("/experiment", json=DESIGN)
    assert created.status_code == 200
    assert open_api.get("/tokens").json() == []


def test_once_a_token_exists_requests_without_one_get_401_but_health_answers(
    open_api: TestClient,
) -> None:
    _make(open_api, "admin", "admin")
    refused = open_api.get("/experiments")
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert "labledger token create" in refused.json()["detail"]
    assert "Bearer" in refused.headers["WWW-Authenticate"]
    assert open_api.post("/experiment", json=DESIGN).status_code == 401
    assert open_api.get("/health").status_code == 200


def test_a_wrong_or_malformed_token_is_refused(open_api: TestClient) -> None:
    _make(open_api, "admin", "admin")
    assert open_api.get("/experiments", headers=_bearer("lbl_not-a-real-one")).status_code == 401
    odd = open_api.get("/experiments", headers={"Authorization": "Token abc"})
    assert odd.status_code == 401
    assert "Bearer" in odd.json()["detail"]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        pytest.param("read", {"read": 200, "write": 403, "admin": 403}, id="read"),
        pytest.param("write", {"read": 200, "write": 200, "admin": 403}, id="write"),
        pytest.param("admin", {"read": 200, "write": 200, "admin": 200}, id="admin"),
    ],
)
def test_each_scope_allows_exactly_its_routes(
    db_url: str, tmp_path: Path, scope: str, expected: dict[str, int]
) -> None:
    with _app(db_url, tmp_path) as client:
        root = _make(client, "root", "admin")
        secret = _make(client, f"t-{scope}", scope, root)
        exp_id = client.post("/experiment", json=DESIGN, headers=_bearer(root)).json()["_id"]
        client.delete(f"/experiment/{exp_id}", headers=_bearer(root))
        auth = _bearer(secret)
        got = {
            "read": client.get("/experiments", headers=auth).status_code,
            "write": client.post("/experiment", json=DESIGN, headers=auth).status_code,
            "admin": client.delete(f"/trash/{exp_id}", headers=auth).status_code,
        }
        # 204 is the purge's success
        assert {k: 200 if v == 204 else v for k, v in got.items()} == expected


def test_a_read_token_cannot_change_anything(open_api: TestClient) -> None:
    root = _make(open_api, "root", "admin")
    reader = _bearer(_make(open_api, "viewer", "read", root))
    exp_id = open_api.post("/experiment", json=DESIGN, headers=_bearer(root)).json()["_id"]
    attempts = [
        ("POST", "/experiment", DESIGN),
        ("POST", f"/experiment/{exp_id}/pause", None),
        ("POST", f"/experiment/{exp_id}/end", None),
        ("PATCH", f"/experiment/{exp_id}", {"run_name": "x"}),
        ("DELETE", f"/experiment/{exp_id}", None),
        ("POST", "/campaign", {"campaign_name": "c"}),
        ("POST", "/tokens", {"name": "more", "scope": "admin"}),
    ]
    for method, path, body in attempts:
        response = open_api.request(method, path, json=body, headers=reader)
        assert response.status_code == 403, (method, path, response.text)
        assert "needs scope" in response.json()["detail"]
        assert "'viewer' has 'read'" in response.json()["detail"]
    after = open_api.get(f"/experiment/{exp_id}", headers=reader).json()
    assert after["lifecycle_status"] == "in_progress"
    assert after["run_name"] is None


def test_the_event_log_records_which_token_acted(open_api: TestClient) -> None:
    root = _make(open_api, "root", "admin")
    arm = _bearer(_make(open_api, "robot-arm", "write", root))
    exp_id = open_api.post("/experiment", json=DESIGN, headers=arm).json()["_id"]
    open_api.post(f"/experiment/{exp_id}/pause", headers=_bearer(root))
    events = open_api.get(f"/experiment/{exp_id}/events", headers=arm).json()
    assert [e["actor"] for e in events] == ["token:robot-arm", "token:root"]


def test_a_declared_actor_header_cannot_hide_the_token(open_api: TestClient) -> None:
    root = _make(open_api, "root", "admin")
    headers = {**_bearer(root), "X-Labledger-Actor": "somebody-else"}
    exp_id = open_api.post("/experiment", json=DESIGN, headers=headers).json()["_id"]
    events = open_api.get(f"/experiment/{exp_id}/events", headers=headers).json()
    assert events[0]["actor"] == "token:root"


def test_basic_auth_with_the_token_as_password_works(open_api: TestClient) -> None:
    """What ``http://lab:<secret>@host/`` makes httpx (and so the MADSci client) send."""
    root = _make(open_api, "root", "admin")
    assert open_api.get("/experiments", auth=("lab", root)).status_code == 200
    as_user = base64.b64encode(f"{root}:".encode()).decode()  # curl -u SECRET:
    assert open_api.get("/experiments", headers={"Authorization": f"Basic {as_user}"}).is_success
    assert open_api.get("/experiments", auth=("lab", "wrong")).status_code == 401


def test_a_revoked_token_is_refused_within_a_second(sqlite_url: str, tmp_path: Path) -> None:
    with _app(sqlite_url, tmp_path) as client:
        root = _make(client, "root", "admin")
        arm = _make(client, "arm", "write", root)
        assert client.get("/experiments", headers=_bearer(arm)).status_code == 200
        # revoked from another process's point of view: straight in the database
        engine = create_db_engine(sqlite_url)
        try:
            TokenStore(engine).revoke("arm")
        finally:
            engine.dispose()
        time.sleep(1.1)
        assert client.get("/experiments", headers=_bearer(arm)).status_code == 401
        listed = {t["name"]: t for t in client.get("/tokens", headers=_bearer(root)).json()}
        assert listed["arm"]["revoked_at"] is not None
        assert listed["arm"]["last_used_at"] is not None


def test_revoking_over_http_takes_effect_at_once(open_api: TestClient) -> None:
    root = _make(open_api, "root", "admin")
    arm = _make(open_api, "arm", "write", root)
    revoked = open_api.delete("/tokens/arm", headers=_bearer(root))
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert open_api.get("/experiments", headers=_bearer(arm)).status_code == 401
    assert open_api.delete("/tokens/nobody", headers=_bearer(root)).status_code == 404


def test_secrets_are_stored_only_as_hashes(open_api: TestClient, sqlite_url: str) -> None:
    secret = _make(open_api, "root", "admin")
    engine = create_db_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT * FROM api_tokens").all()
    finally:
        engine.dispose()
    assert len(rows) == 1
    assert secret not in repr(rows)
    assert "secret" not in open_api.get("/tokens", headers=_bearer(secret)).json()[0]


def test_auth_required_refuses_before_any_token_exists(sqlite_url: str, tmp_path: Path) -> None:
    with _app(sqlite_url, tmp_path, auth_required=True) as client:
        assert client.get("/experiments").status_code == 401
        assert client.get("/health").status_code == 200


def test_trusted_networks_may_write_without_a_token_others_may_not(
    sqlite_url: str, tmp_path: Path
) -> None:
    app = create_app(
        Settings(db_url=sqlite_url, data_dir=tmp_path, trusted_networks=["10.0.5.0/24"])
    )
    with (
        TestClient(app, client=("10.0.5.17", 40000)) as instrument,
        TestClient(app, client=("192.168.1.9", 40000)) as laptop,
    ):
        created = instrument.post("/experiment", json=DESIGN)
        assert created.status_code == 200
        exp_id = created.json()["_id"]
        events = instrument.get(f"/experiment/{exp_id}/events").json()
        assert events[0]["actor"] == "anonymous@10.0.5.17"
        # trusted_scope is write: purging the trash still needs an admin token
        instrument.delete(f"/experiment/{exp_id}")
        assert instrument.delete(f"/trash/{exp_id}").status_code == 403
        assert laptop.get("/experiments").status_code == 401


def test_trusted_scope_read_lets_a_network_look_but_not_touch(
    sqlite_url: str, tmp_path: Path
) -> None:
    app = create_app(
        Settings(
            db_url=sqlite_url,
            data_dir=tmp_path,
            trusted_networks=["10.0.0.0/8"],
            trusted_scope="read",
        )
    )
    with TestClient(app, client=("10.1.2.3", 40000)) as viewer:
        assert viewer.get("/experiments").status_code == 200
        refused = viewer.post("/experiment", json=DESIGN)
        assert refused.status_code == 403
        assert "this client has 'read'" in refused.json()["detail"]


def test_a_browser_is_asked_for_the_token_and_gets_the_ui_with_it(open_api: TestClient) -> None:
    root = _make(open_api, "root", "admin")
    refused = open_api.get("/ui/experiments", headers={"Accept": "text/html"})
    assert refused.status_code == 401
    challenges = refused.headers.get_list("WWW-Authenticate")
    assert [c.split()[0] for c in challenges] == ["Bearer", "Basic"]
    page = open_api.get("/ui/experiments", auth=("anyone", root))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")


@pytest.mark.postgres
def test_with_the_database_gone_requests_get_503_not_500(
    pg_url: str, tmp_path: Path, pg_cluster: object
) -> None:
    from sqlalchemy.engine import make_url

    app = create_app(Settings(db_url=pg_url, data_dir=tmp_path))
    with TestClient(app) as api:
        root = _bearer(_make(api, "root", "admin"))
        # The drop cuts the server's own connections. Its engine stays open: closing it while
        # the app runs would race the lease sweeper, whose connection would go back, open, to
        # a discarded pool (and be found by the garbage collector in some later test).
        name = make_url(pg_url).database
        pg_cluster.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
        time.sleep(1.1)  # past the token cache
        listing = api.get("/experiments", headers=root)
        assert listing.status_code == 503, listing.text
        assert listing.json()["error"]["code"] == "storage_error"
        create = api.post(
            "/experiment", json=DESIGN, headers={**root, "Idempotency-Key": "after-the-fall"}
        )
        assert create.status_code == 503, create.text
