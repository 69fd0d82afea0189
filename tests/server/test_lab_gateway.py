"""The lab record when the lab is absent, down, or answers garbage: routes never fail for it.

The managers here are real HTTP servers that are not MADSci managers (a static file server
answering HTML or JSON of the wrong shape) or ports nobody listens on; the real managers are in
``tests/lab``.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from labledger.server.app import create_app
from labledger.server.lab import ServerLab
from labledger.settings import Settings
from labledger_fixtures import free_port

ROUTES = ("workflows", "datapoints", "lab/resources", "lab/events")


@pytest.fixture
def garbage_server(tmp_path: Path) -> Iterator[str]:
    """A static file server: HTML where JSON is expected, a list where an object is."""
    root = tmp_path / "www"
    (root / "workflows").mkdir(parents=True)
    (root / "workflows" / "active").write_text("<html>not json</html>")
    (root / "workflows" / "archived").write_text("[1, 2, 3]")
    (root / "context").write_text(json.dumps({"workcell_server_url": "http://127.0.0.1:9/"}))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def app_client(tmp_path: Path, **lab: str) -> TestClient:
    settings = Settings(
        db_url=f"sqlite:///{tmp_path}/labledger.sqlite3",
        data_dir=tmp_path,
        lab_timeout=0.5,
        **lab,  # type: ignore[arg-type]
    )
    return TestClient(create_app(settings))


def server_lab(client: TestClient) -> ServerLab:
    """The app's one lab object (its gateway, its workcell control, its store)."""
    lab: ServerLab = client.app.state.lab  # type: ignore[attr-defined]
    return lab


def new_experiment(client: TestClient) -> str:
    response = client.post("/experiment", json={"experiment_design": {"experiment_name": "x"}})
    assert response.status_code == 200, response.text
    return str(response.json()["_id"])


def test_without_a_lab_every_section_is_absent(tmp_path: Path) -> None:
    with app_client(tmp_path) as client:
        eid = new_experiment(client)
        for route in ROUTES:
            response = client.get(f"/experiment/{eid}/{route}")
            assert response.status_code == 200 and response.json() == []
            assert response.headers["X-Lab-State"] == "absent"
        record = client.get(f"/experiment/{eid}/lab").json()
        assert {s["state"] for s in record.values()} == {"absent"}
        assert "lab-workflows" not in client.get(f"/ui/experiments/{eid}").text
        assert "lab" not in client.get(f"/experiment/{eid}/report").json()


def test_managers_nobody_answers_are_unreachable_since_the_first_failure(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    lab = {f"{m}_server_url": dead for m in ("workcell", "data", "resource", "event")}
    with app_client(tmp_path, **lab) as client:
        eid = new_experiment(client)
        first = client.get(f"/experiment/{eid}/workflows")
        assert first.status_code == 200 and first.json() == []
        assert first.headers["X-Lab-State"] == "unreachable"
        since = first.headers["X-Lab-Unreachable-Since"]
        time.sleep(0.01)
        again = client.get(f"/experiment/{eid}/workflows")
        assert again.headers["X-Lab-Unreachable-Since"] == since  # since the first failure
        record = client.get(f"/experiment/{eid}/lab").json()
        assert {s["state"] for s in record.values()} == {"unreachable"}
        assert all("ConnectError" in s["error"] for s in record.values())
        page = client.get(f"/ui/experiments/{eid}")
        assert page.status_code == 200 and "workcell unreachable since" in page.text
        report = client.get(f"/experiment/{eid}/report?format=md")
        assert report.status_code == 200 and "data unreachable since" in report.text
        download = client.get(f"/experiment/{eid}/datapoints/01JC0000000000000000000007/value")
        assert download.status_code == 502
        assert download.json()["error"]["code"] == "lab_unavailable"
        missing = client.get("/experiment/01JC0000000000000000000007/workflows")
        assert missing.status_code == 404


def test_a_manager_answering_garbage_is_unreachable_not_an_error(
    tmp_path: Path, garbage_server: str
) -> None:
    lab = {f"{m}_server_url": garbage_server for m in ("workcell", "data", "resource", "event")}
    with app_client(tmp_path, **lab) as client:
        eid = new_experiment(client)
        cid = client.post(
            "/campaign",
            json={"campaign_name": "c", "experiment_ids": [eid]},
        ).json()["campaign_id"]
        for path in (
            *(f"/experiment/{eid}/{r}" for r in (*ROUTES, "lab", "report")),
            f"/campaign/{cid}/workflows",
            f"/campaign/{cid}/datapoints",
            f"/campaign/{cid}/lab",
            f"/campaign/{cid}/report?format=html",
            f"/ui/experiments/{eid}",
            f"/ui/campaigns/{cid}",
        ):
            response = client.get(path)
            assert response.status_code == 200, (path, response.text[:300])
        workflows = client.get(f"/experiment/{eid}/workflows")
        assert workflows.headers["X-Lab-State"] == "unreachable"
        assert (
            "JSONDecodeError" in client.get(f"/experiment/{eid}/lab").json()["workflows"]["error"]
        )


def test_a_pause_while_the_workcell_is_down_succeeds_and_waits_in_the_log(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with app_client(tmp_path, workcell_server_url=dead) as client:
        eid = new_experiment(client)
        assert client.post(f"/experiment/{eid}/pause").json()["status"] == "paused"
        lab = server_lab(client)
        assert lab.workcell_control is not None
        key = lab.workcell_control.key
        deadline = time.monotonic() + 10
        cursor = lab.store.forward_cursors.get(key)
        while (cursor is None or not cursor.failures) and time.monotonic() < deadline:
            time.sleep(0.05)
            cursor = lab.store.forward_cursors.get(key)
        assert cursor is not None and cursor.failures >= 1
        assert "workcell" in (cursor.last_error or "")
        paused = [e for e in lab.store.events.find(experiment_id=eid) if e.to_status == "paused"]
        pause_id = paused[0].event_id
        assert pause_id is not None
        assert cursor.last_event_id < pause_id  # not passed: retried later


def test_the_lab_context_names_the_managers_not_set(tmp_path: Path, garbage_server: str) -> None:
    with app_client(tmp_path, lab_server_url=garbage_server) as client:
        gateway = server_lab(client).gateway
        assert gateway.urls.workcell == "http://127.0.0.1:9"
        assert gateway.urls.data is None
    with app_client(
        tmp_path, lab_server_url=garbage_server, workcell_server_url="http://127.0.0.1:7"
    ) as client:
        assert server_lab(client).gateway.urls.workcell == "http://127.0.0.1:7"
