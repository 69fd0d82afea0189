"""Purging an experiment removes its files; garbage collection removes only files no record
refers to (files are content-addressed: one file can belong to many experiments)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import blake3
import pytest
from fastapi.testclient import TestClient

from labledger.archive.s3 import S3Store
from labledger.archive.store import BlobStore
from labledger.server.app import create_app
from labledger.server.file_gc import collect_files
from labledger.server.lab import result_store
from labledger.settings import Settings
from labledger_fixtures import S3Server

HOURS_AGO = time.time() - 2 * 3600


def _age_all(store: BlobStore) -> None:
    """As if every file had been uploaded two hours ago."""
    for digest in store.iter_digests():
        os.utime(store.path_of(digest), (HOURS_AGO, HOURS_AGO))


def _new(api: TestClient, name: str) -> str:
    answer = api.post("/experiment", json={"experiment_design": {"experiment_name": name}})
    return str(answer.json()["_id"])


def _upload(api: TestClient, exp_id: str, name: str, content: bytes) -> str:
    up = api.post(f"/experiment/{exp_id}/files/{name}", files={"file": (name, content, "x/y")})
    assert up.status_code == 201, up.text
    return str(up.json()["digest"])


def test_purge_removes_its_files_and_keeps_shared_ones(db_url: str, tmp_path: Path) -> None:
    settings = Settings(db_url=db_url, data_dir=tmp_path)
    app = create_app(settings)
    store = BlobStore(settings.results_path)
    with TestClient(app) as api:
        a, b, trashed = _new(api, "a"), _new(api, "b"), _new(api, "in the trash")
        shared = _upload(api, a, "shared", b"the same bytes")
        assert _upload(api, b, "copy", b"the same bytes") == shared
        own = _upload(api, a, "own", b"only a has this")
        kept_in_trash = _upload(api, trashed, "t", b"trashed, not purged")
        pushed = b"an output of a pushed run"
        pushed_digest = blake3.blake3(pushed).hexdigest()
        assert api.put(f"/blobs/{pushed_digest}", content=pushed).status_code == 201
        meta = {"recorder": {"files": {"outputs": [{"path": "o", "digest": pushed_digest}]}}}
        assert api.patch(f"/experiment/{a}", json={"metadata": meta}).status_code == 200
        assert api.delete(f"/experiment/{trashed}").status_code in (200, 204)
        _age_all(store)

        assert api.delete(f"/experiment/{a}").status_code in (200, 204)
        assert api.delete(f"/trash/{a}").status_code == 204

        assert not store.has(own) and not store.has(pushed_digest)
        assert store.has(shared) and store.has(kept_in_trash)
        assert api.get(f"/experiment/{b}/files/copy").content == b"the same bytes"
    app.state.lab.close()


def test_db_gc_removes_only_old_unreferenced_files(db_url: str, tmp_path: Path) -> None:
    settings = Settings(db_url=db_url, data_dir=tmp_path)
    app = create_app(settings)
    store = BlobStore(settings.results_path)
    with TestClient(app) as api:
        exp = _new(api, "x")
        used = _upload(api, exp, "used", b"referenced")
        for content in (b"left by a push that never imported", b"uploaded just now"):
            digest = blake3.blake3(content).hexdigest()
            assert api.put(f"/blobs/{digest}", content=content).status_code == 201
        old_orphan = blake3.blake3(b"left by a push that never imported").hexdigest()
        new_orphan = blake3.blake3(b"uploaded just now").hexdigest()
        _age_all(store)
        os.utime(store.path_of(new_orphan))  # found again by an upload in flight: kept

        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_")},
            "EXPERIMENT_DB_URL": db_url,
            "EXPERIMENT_DATA_DIR": str(tmp_path),
        }
        done = subprocess.run(
            [sys.executable, "-m", "labledger", "db", "gc"],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "Removed 1 result files" in done.stdout and "kept 1" in done.stdout
        assert not store.has(old_orphan) and store.has(new_orphan) and store.has(used)
        assert api.get(f"/experiment/{exp}/files/used").content == b"referenced"
    app.state.lab.close()


def test_gc_on_an_s3_store_removes_only_unreferenced_files_past_the_grace_period(
    db_url: str, tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    blob_url = f"s3://{s3_server.create_bucket()}/lab"
    settings = Settings(db_url=db_url, data_dir=tmp_path, blob_url=blob_url)
    app = create_app(settings)
    store = result_store(settings)
    assert isinstance(store, S3Store)
    with TestClient(app) as api:
        exp = _new(api, "x")
        used = _upload(api, exp, "used", b"referenced")
        orphan_content = b"left by a push that never imported"
        orphan = blake3.blake3(orphan_content).hexdigest()
        assert api.put(f"/blobs/{orphan}", content=orphan_content).status_code == 201

        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_")},
            "EXPERIMENT_DB_URL": db_url,
            "EXPERIMENT_DATA_DIR": str(tmp_path),
            "EXPERIMENT_BLOB_URL": blob_url,
        }
        done = subprocess.run(
            [sys.executable, "-m", "labledger", "db", "gc"],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "Removed 0 result files" in done.stdout and "kept 1" in done.stdout
        assert store.has(orphan) and store.has(used)

        deadline = time.monotonic() + 30
        while (store._age_s(orphan, store.key_of(orphan)) or 0) <= 1:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        collected = collect_files(app.state.lab.engine, store, grace_s=1)
        assert (collected.removed, collected.freed) == (1, len(orphan_content))
        assert not store.has(orphan) and store.has(used)
        assert api.get(f"/experiment/{exp}/files/used").content == b"referenced"
        # pushing it again after the collection stores it anew
        assert api.put(f"/blobs/{orphan}", content=orphan_content).status_code == 201
    app.state.lab.close()
