"""``labledger db backup`` / ``restore``: the database and the result files, into a new data
folder, on SQLite and PostgreSQL, through the real CLI and the real app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import blake3
import pytest
from fastapi.testclient import TestClient

from labledger.server.app import create_app
from labledger.settings import Settings
from labledger_fixtures import S3Server

pytestmark = pytest.mark.slow


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_")}
    return subprocess.run(
        [sys.executable, "-m", "labledger", *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        check=False,
        timeout=120,
    )


def fresh_url(request: pytest.FixtureRequest, db_url: str, folder: Path) -> str:
    """Another empty database of the same kind as ``db_url`` (the new install's)."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{folder}/labledger.sqlite3"
    cluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database()
    request.addfinalizer(lambda: cluster.drop_database(name))
    return str(cluster.url(name))


def test_a_backup_restores_records_and_files_into_a_new_data_folder(
    request: pytest.FixtureRequest, db_url: str, tmp_path: Path
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    content = os.urandom(300_000)
    app = create_app(Settings(db_url=db_url, data_dir=old))
    with TestClient(app) as api:
        exp_id = api.post("/experiment", json={"experiment_design": {"experiment_name": "kept"}})
        exp_id = exp_id.json()["_id"]
        up = api.post(
            f"/experiment/{exp_id}/files/trace", files={"file": ("trace.bin", content, "x/y")}
        )
        assert up.status_code == 201, up.text
    app.state.lab.close()

    backed = cli(
        "db", "backup", "--to", str(tmp_path / "bk"),
        env={"EXPERIMENT_DB_URL": db_url, "EXPERIMENT_DATA_DIR": str(old)},
    )  # fmt: skip
    assert backed.returncode == 0, backed.stderr
    (folder,) = (tmp_path / "bk").iterdir()
    assert "1 result files" in backed.stdout and "database (schema" in backed.stdout
    about = json.loads((folder / "backup.json").read_text())
    assert about["files"]["count"] == 1 and about["files"]["bytes"] == len(content)
    assert about["database"]["schema"] and (folder / about["database"]["file"]).is_file()

    new_url = fresh_url(request, db_url, tmp_path)
    new_env = {"EXPERIMENT_DB_URL": new_url, "EXPERIMENT_DATA_DIR": str(new)}
    restored = cli("db", "restore", str(folder), "--yes", env=new_env)
    assert restored.returncode == 0, restored.stderr
    assert "1 result files" in restored.stdout

    app = create_app(Settings(db_url=new_url, data_dir=new))
    with TestClient(app) as api:
        down = api.get(f"/experiment/{exp_id}/files/trace")
        assert down.status_code == 200, down.text
        assert down.content == content
        assert down.headers["x-content-blake3"] == blake3.blake3(content).hexdigest()
    app.state.lab.close()


def test_restore_refuses_a_damaged_file_and_names_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.sqlite3"
    app = create_app(Settings(db_url=url, data_dir=tmp_path / "old"))
    with TestClient(app) as api:
        exp_id = api.post("/experiment", json={"experiment_design": {"experiment_name": "x"}})
        api.post(
            f"/experiment/{exp_id.json()['_id']}/files/f", files={"file": ("f", b"good", "x/y")}
        )
    app.state.lab.close()
    env = {"EXPERIMENT_DB_URL": url, "EXPERIMENT_DATA_DIR": str(tmp_path / "old")}
    assert cli("db", "backup", "--to", str(tmp_path / "bk"), env=env).returncode == 0
    (folder,) = (tmp_path / "bk").iterdir()
    (blob,) = [p for p in (folder / "files" / "objects").rglob("*") if p.is_file()]
    blob.chmod(0o644)
    blob.write_bytes(b"evil")
    new_env = {
        "EXPERIMENT_DB_URL": f"sqlite:///{tmp_path}/new.sqlite3",
        "EXPERIMENT_DATA_DIR": str(tmp_path / "new"),
    }
    refused = cli("db", "restore", str(folder), "--yes", env=new_env)
    assert refused.returncode == 1 and "damaged" in refused.stderr
    assert blob.parent.name + blob.name in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_backup_of_a_service_on_s3_restores_into_another_bucket(
    request: pytest.FixtureRequest, db_url: str, tmp_path: Path, s3_server: S3Server
) -> None:
    old_store = f"s3://{s3_server.create_bucket()}/lab"
    new_store = f"s3://{s3_server.create_bucket()}/lab"
    content = os.urandom(300_000)
    old_env = {
        **s3_server.env(),
        "EXPERIMENT_DB_URL": db_url,
        "EXPERIMENT_DATA_DIR": str(tmp_path / "old"),
        "EXPERIMENT_BLOB_URL": old_store,
    }
    app = create_app(
        Settings(db_url=db_url, data_dir=tmp_path / "old", blob_url=old_store, **_s3(s3_server))
    )
    with TestClient(app) as api:
        exp_id = api.post("/experiment", json={"experiment_design": {"experiment_name": "kept"}})
        exp_id = exp_id.json()["_id"]
        up = api.post(
            f"/experiment/{exp_id}/files/trace", files={"file": ("trace.bin", content, "x/y")}
        )
        assert up.status_code == 201, up.text
    app.state.lab.close()

    backed = cli("db", "backup", "--to", str(tmp_path / "bk"), env=old_env)
    assert backed.returncode == 0, backed.stderr
    assert "1 result files" in backed.stdout and old_store in backed.stdout
    (folder,) = (tmp_path / "bk").iterdir()
    about = json.loads((folder / "backup.json").read_text())
    assert about["files"]["store"] == old_store
    assert about["files"]["count"] == 1 and about["files"]["bytes"] == len(content)

    new_url = fresh_url(request, db_url, tmp_path)
    new_env = {
        **s3_server.env(),
        "EXPERIMENT_DB_URL": new_url,
        "EXPERIMENT_DATA_DIR": str(tmp_path / "new"),
        "EXPERIMENT_BLOB_URL": new_store,
    }
    restored = cli("db", "restore", str(folder), "--yes", env=new_env)
    assert restored.returncode == 0, restored.stderr
    assert "1 result files" in restored.stdout and new_store in restored.stdout

    app = create_app(
        Settings(db_url=new_url, data_dir=tmp_path / "new", blob_url=new_store, **_s3(s3_server))
    )
    with TestClient(app) as api:
        down = api.get(f"/experiment/{exp_id}/files/trace")
        assert down.status_code == 200, down.text
        assert down.content == content
    app.state.lab.close()
    assert not (tmp_path / "new" / "results" / "objects").exists(), "the files went to S3"


def _s3(s3_server: S3Server) -> dict[str, Any]:
    env = s3_server.env()
    return {
        "s3_endpoint_url": env["AWS_ENDPOINT_URL"],
        "s3_region": env["AWS_REGION"],
        "s3_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "s3_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }
