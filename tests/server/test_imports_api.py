"""Blobs by digest and idempotent imports: the server side of ``labledger push``."""

from __future__ import annotations

import blake3
from fastapi.testclient import TestClient

RUN_ID = "01JC00000000000000000000AB"


def record(status: str, **extra: object) -> dict[str, object]:
    return {
        "experiment": {
            "experiment_id": RUN_ID,
            "status": status,
            "experiment_design": {"experiment_name": "local"},
            "run_name": "run 1",
            "created_at": "2026-11-01T10:00:00+00:00",
            "started_at": "2026-11-01T10:00:01+00:00",
            **extra,
        },
        "events": [
            {"type": "created", "to_status": "in_progress", "at": "2026-11-01T10:00:00+00:00"}
        ],
        "recorder": {"hypothesis": "h"},
    }


def test_import_is_created_once_then_unchanged_then_updated(api: TestClient) -> None:
    first = api.put(f"/experiment/{RUN_ID}/import", json=record("in_progress"))
    assert first.status_code == 201 and first.json()["version"] == 1
    assert first.json()["created_at"].startswith("2026-11-01T10:00:00")
    again = api.put(f"/experiment/{RUN_ID}/import", json=record("in_progress"))
    assert again.status_code == 200 and again.json()["version"] == 1
    ended = record("completed", ended_at="2026-11-01T11:00:00+00:00")
    ended["events"] = [
        *ended["events"],
        {
            "type": "status_changed",
            "from_status": "in_progress",  # type: ignore[misc]
            "to_status": "completed",
            "at": "2026-11-01T11:00:00+00:00",
        },
    ]
    updated = api.put(f"/experiment/{RUN_ID}/import", json=ended)
    assert updated.status_code == 200 and updated.json()["lifecycle_status"] == "completed"
    events = api.get(f"/experiment/{RUN_ID}/events").json()
    assert [e["to_status"] for e in events if e["to_status"]] == ["in_progress", "completed"]
    back = api.put(f"/experiment/{RUN_ID}/import", json=record("in_progress"))
    assert back.status_code == 409
    assert "'completed'" in back.json()["detail"] and "'in_progress'" in back.json()["detail"]


def test_import_path_and_body_must_agree(sqlite_api: TestClient) -> None:
    response = sqlite_api.put(
        "/experiment/01JC0000000000000000000000/import", json=record("completed")
    )
    assert response.status_code == 422 and response.json()["error"]["field"] == "experiment._id"


def test_blobs_are_checked_against_their_digest_and_stored_once(sqlite_api: TestClient) -> None:
    data = b"measurement\n" * 1000
    digest = blake3.blake3(data).hexdigest()
    assert sqlite_api.post("/blobs/missing", json={"digests": [digest]}).json() == {
        "missing": [digest]
    }
    wrong = sqlite_api.put(f"/blobs/{digest}", content=b"tampered")
    assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "digest"
    assert sqlite_api.get(f"/blobs/{digest}").status_code == 404
    stored = sqlite_api.put(f"/blobs/{digest}", content=data)
    assert stored.status_code == 201 and stored.json() == {
        "digest": digest,
        "size": len(data),
        "added": True,
    }
    assert sqlite_api.put(f"/blobs/{digest}", content=data).json()["added"] is False
    assert sqlite_api.get(f"/blobs/{digest}").content == data
    assert sqlite_api.post("/blobs/missing", json={"digests": [digest]}).json() == {"missing": []}
    bad = sqlite_api.post("/blobs/missing", json={"digests": ["../../etc/passwd"]})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "digests"
    assert sqlite_api.get("/blobs/not-a-digest").status_code == 422
