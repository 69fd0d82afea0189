"""A full disk under the result store: uploads answer 507 with the one error body, store nothing,
leave nothing behind, and work again once there is space."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import blake3
from fastapi.testclient import TestClient

from labledger.server.app import create_app
from labledger.settings import Settings

MB = 1024 * 1024


def _assert_storage_full(answer: object, disk: Path) -> None:
    assert answer.status_code == 507, answer.text  # type: ignore[attr-defined]
    body = answer.json()  # type: ignore[attr-defined]
    assert body["error"]["code"] == "storage_full" and body["detail"] == body["error"]["message"]
    assert "No space left on the disk" in body["detail"] and str(disk) in body["detail"]


def _used(disk: Path) -> int:
    return shutil.disk_usage(disk).used


def test_uploads_on_a_full_disk_answer_507_and_store_nothing(
    db_url: str, tmp_path: Path, small_disk: Callable[[int], Path]
) -> None:
    disk = small_disk(2)
    app = create_app(Settings(db_url=db_url, data_dir=tmp_path, results_dir=disk / "results"))
    big = os.urandom(3 * MB)
    with TestClient(app) as api:
        exp_id = api.post("/experiment", json={"experiment_design": {"experiment_name": "x"}})
        exp_id = exp_id.json()["_id"]
        api.post(f"/experiment/{exp_id}/files/warmup", files={"file": ("w", b"w", "text/plain")})
        before = _used(disk)

        upload = api.post(
            f"/experiment/{exp_id}/files/trace", files={"file": ("trace.bin", big, "x/y")}
        )
        _assert_storage_full(upload, disk)
        assert api.get(f"/experiment/{exp_id}/results/trace").status_code == 404

        digest = blake3.blake3(big).hexdigest()
        pushed = api.put(f"/blobs/{digest}", content=big)
        _assert_storage_full(pushed, disk)
        assert api.post("/blobs/missing", json={"digests": [digest]}).json()["missing"] == [digest]

        assert _used(disk) == before  # no partial file was left taking the space
        small = api.post(
            f"/experiment/{exp_id}/files/trace", files={"file": ("trace.bin", b"fits", "x/y")}
        )
        assert small.status_code == 201, small.text
        assert api.get(f"/experiment/{exp_id}/files/trace").content == b"fits"
