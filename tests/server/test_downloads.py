"""Downloads by Range: parts of a file, and the one JSON error body for a bad or
unsatisfiable Range (Starlette alone answers plain text 400 or an empty 416)."""

from __future__ import annotations

import blake3
import pytest
from fastapi.testclient import TestClient

CONTENT = b"0123456789"


def _paths(api: TestClient) -> list[str]:
    exp = api.post("/experiment", json={"experiment_design": {"experiment_name": "d"}}).json()
    uploaded = api.post(f"/experiment/{exp['_id']}/files/raw", files={"file": ("raw.bin", CONTENT)})
    assert uploaded.status_code == 201, uploaded.text
    return [f"/experiment/{exp['_id']}/files/raw", f"/blobs/{blake3.blake3(CONTENT).hexdigest()}"]


def test_a_range_answers_that_part_of_the_file(sqlite_api: TestClient) -> None:
    for path in _paths(sqlite_api):
        part = sqlite_api.get(path, headers={"Range": "bytes=2-4"})
        assert part.status_code == 206 and part.content == b"234"
        assert part.headers["Content-Range"] == "bytes 2-4/10"


@pytest.mark.parametrize(
    "header",
    ["bytes=5-2", "items=0-1", "bytes", "bytes=-"],
    ids=["backwards", "unit", "bare", "dash"],
)
def test_a_malformed_range_answers_422_naming_the_header(
    sqlite_api: TestClient, header: str
) -> None:
    for path in _paths(sqlite_api):
        answer = sqlite_api.get(path, headers={"Range": header})
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/json"
        assert answer.json()["error"]["code"] == "invalid_input"
        assert answer.json()["error"]["field"] == "Range"
        assert header in answer.json()["error"]["message"]


def test_a_range_past_the_end_answers_416_with_the_error_body(sqlite_api: TestClient) -> None:
    for path in _paths(sqlite_api):
        answer = sqlite_api.get(path, headers={"Range": "bytes=100-200"})
        assert answer.status_code == 416
        assert answer.headers["Content-Range"] == "bytes */10"
        assert answer.headers["content-type"] == "application/json"
        error = answer.json()["error"]
        assert error["code"] == "range_not_satisfiable" and error["size"] == 10
        assert "10 bytes" in error["message"]
