"""Limits: body and upload size (413), page size and string lengths (422), rate limit (429)."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from labledger.errors import PayloadTooLarge
from labledger.server.app import create_app
from labledger.server.limits import copy_limited, format_bytes
from labledger.server.routes.experiments import MAX_EVENT_ID, MAX_OFFSET
from labledger.settings import Settings
from labledger_fixtures import LiveServerFactory

DESIGN = {"experiment_design": {"experiment_name": "titration"}}


def _client(sqlite_url: str, tmp_path: Path, **settings: Any) -> TestClient:
    return TestClient(create_app(Settings(db_url=sqlite_url, data_dir=tmp_path, **settings)))


@pytest.fixture
def small(sqlite_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with _client(sqlite_url, tmp_path, max_body_bytes=4096, max_upload_bytes=8192) as client:
        yield client


def test_a_body_over_the_limit_is_refused_with_413_naming_the_limit(small: TestClient) -> None:
    body = {**DESIGN, "metadata": {"blob": "x" * 5000}}
    refused = small.post("/experiment", json=body)
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "payload_too_large"
    assert refused.json()["error"]["limit"] == 4096
    assert "4 KiB" in refused.json()["detail"]
    assert "max_body_bytes" in refused.json()["detail"]
    assert small.get("/experiments/count").json() == {"count": 0}


def test_a_chunked_body_over_the_limit_is_refused(small: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"experiment_design": {"experiment_name": "x"}, "metadata": {"b": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}}'

    refused = small.post(
        "/experiment", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert refused.status_code == 413
    assert "max_body_bytes" in refused.json()["detail"]
    assert small.get("/experiments/count").json() == {"count": 0}


def test_a_body_under_the_limit_passes(small: TestClient) -> None:
    body = {**DESIGN, "metadata": {"blob": "x" * 3000}}
    assert small.post("/experiment", json=body).status_code == 200


def test_multipart_uploads_have_their_own_limit(small: TestClient) -> None:
    # bigger than max_body_bytes, smaller than max_upload_bytes: not refused for its size
    ok = small.post("/experiment", files={"file": ("a.bin", b"z" * 6000)})
    assert ok.status_code != 413
    refused = small.post("/experiment", files={"file": ("a.bin", b"z" * 9000)})
    assert refused.status_code == 413
    assert "max_upload_bytes" in refused.json()["detail"]


def test_copy_limited_stops_at_the_limit() -> None:
    out = io.BytesIO()
    assert copy_limited(io.BytesIO(b"a" * 100), out, 100, chunk=7) == 100
    with pytest.raises(PayloadTooLarge, match="max_upload_bytes") as caught:
        copy_limited(io.BytesIO(b"a" * 101), io.BytesIO(), 100, chunk=7)
    assert caught.value.details["limit"] == 100


def test_format_bytes_names_units() -> None:
    assert format_bytes(512) == "512 bytes"
    assert format_bytes(8 * 1024 * 1024) == "8 MiB"
    assert format_bytes(2 * 1024**3) == "2 GiB"


def test_a_page_over_the_limit_is_refused_with_422_naming_it(small: TestClient) -> None:
    refused = small.get("/experiments", params={"number": 10_001})
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "number"
    assert "10000" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param(
            {"experiment_design": {"experiment_name": "n" * 1001}}, "experiment_name", id="name"
        ),
        pytest.param({**DESIGN, "run_name": "r" * 1001}, "run_name", id="run_name"),
        pytest.param(
            {**DESIGN, "run_description": "d" * 100_001}, "run_description", id="description"
        ),
    ],
)
def test_an_overlong_string_is_refused_with_422_naming_the_field(
    sqlite_url: str, tmp_path: Path, body: dict[str, object], field: str
) -> None:
    with _client(sqlite_url, tmp_path) as client:
        refused = client.post("/experiment", json=body)
    assert refused.status_code == 422
    assert field in refused.json()["error"]["field"]
    assert "at most" in refused.json()["detail"]


def test_rate_limit_answers_429_with_retry_after(sqlite_url: str, tmp_path: Path) -> None:
    app = create_app(
        Settings(db_url=sqlite_url, data_dir=tmp_path, rate_limit=0.5, rate_limit_burst=3)
    )
    with TestClient(app, client=("10.9.8.7", 1000)) as remote, TestClient(app) as local:
        codes = [remote.get("/experiments").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = remote.get("/experiments")
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
        assert "rate_limit" in limited.json()["detail"]
        # another client has its own bucket; loopback is exempt
        with TestClient(app, client=("10.9.8.8", 1000)) as other:
            assert other.get("/experiments").status_code == 200
        assert all(local.get("/experiments").status_code == 200 for _ in range(10))


def test_rate_limit_is_off_by_default(sqlite_url: str, tmp_path: Path) -> None:
    app = create_app(Settings(db_url=sqlite_url, data_dir=tmp_path))
    with TestClient(app, client=("10.9.8.7", 1000)) as remote:
        assert all(remote.get("/experiments").status_code == 200 for _ in range(30))


def test_a_real_server_refuses_a_declared_huge_body_before_reading_it(
    live_server: LiveServerFactory,
) -> None:
    """Content-Length says 1 GiB: the answer comes at once, without the body being sent."""
    server = live_server()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /experiment HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1073741824\r\n\r\n"
        )
        answer = b""
        while b"max_body_bytes" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"1073741824 bytes" in answer


@pytest.mark.parametrize(
    ("path", "params", "headers", "bound"),
    [
        pytest.param("/events", {"after": 2**63}, {}, MAX_EVENT_ID, id="events-after"),
        pytest.param("/experiments", {"offset": 2**63}, {}, MAX_OFFSET, id="experiments-offset"),
        pytest.param("/campaigns", {"offset": 2**64}, {}, MAX_OFFSET, id="campaigns-offset"),
        pytest.param(
            "/events/stream", {}, {"Last-Event-ID": str(2**63)}, MAX_EVENT_ID, id="last-event-id"
        ),
    ],
)
def test_integers_past_64_bits_are_refused_with_422(
    small: TestClient, path: str, params: dict[str, int], headers: dict[str, str], bound: int
) -> None:
    """Found by fuzzing: such a number used to reach the database and answer 500."""
    refused = small.get(path, params=params, headers=headers)
    assert refused.status_code == 422, refused.text
    assert str(bound) in refused.json()["detail"]


@pytest.mark.parametrize(
    ("experiment", "events", "field"),
    [
        pytest.param({"priority": 2**63}, [], "experiment.priority", id="priority"),
        pytest.param({"attempts": 2**40}, [], "experiment.attempts", id="attempts"),
        pytest.param({"run_name": "r" * 1001}, [], "experiment.run_name", id="run_name"),
        pytest.param({"worker_id": "w" * 201}, [], "experiment.worker_id", id="worker_id"),
        pytest.param({}, [{"type": "created", "actor": "a" * 201}], "events.0.actor", id="actor"),
    ],
)
def test_an_imported_record_over_a_column_limit_is_refused_with_422(
    db_url: str,
    tmp_path: Path,
    experiment: dict[str, object],
    events: list[dict[str, object]],
    field: str,
) -> None:
    """Found while fuzzing: values past a column's size reached the database (500 or 503)."""
    from labledger.core.ids import new_ulid

    exp_id = new_ulid()
    body = {
        "experiment": {"_id": exp_id, "experiment_design": {"experiment_name": "x"}, **experiment},
        "events": events,
    }
    with _client(db_url, tmp_path) as client:
        refused = client.put(f"/experiment/{exp_id}/import", json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["field"] == field
        assert client.get(f"/experiment/{exp_id}").status_code == 404
