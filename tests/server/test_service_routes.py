"""Health, settings and definition."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from labledger.server.app import create_app
from labledger.settings import Settings

ULID = "01JC0000000000000000000007"


def test_health_reports_database_and_count(api: TestClient) -> None:
    api.post("/experiment", json={"experiment_design": {"experiment_name": "a"}})
    health = api.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["healthy"] is True and body["db_connected"] is True
    assert body["total_experiments"] == 1 and body["version"]


@pytest.mark.postgres
def test_health_is_503_when_the_database_is_gone(
    pg_url: str, tmp_path: Path, pg_cluster: object
) -> None:
    from sqlalchemy.engine import make_url

    app = create_app(Settings(db_url=pg_url, data_dir=tmp_path))
    with TestClient(app) as api:
        assert api.get("/health").status_code == 200
        name = make_url(pg_url).database
        app.state.lab.close()
        pg_cluster.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # type: ignore[attr-defined]
        down = api.get("/health")
        assert down.status_code == 503
        assert down.json()["healthy"] is False and down.json()["db_connected"] is False
        assert "Database connection failed" in down.json()["description"]
        listing = api.get("/experiments")
        assert listing.status_code == 503 and listing.json()["error"]["code"] == "storage_error"


def test_settings_redact_secrets_and_show_non_defaults(tmp_path: Path) -> None:
    url = "postgresql+psycopg://lab:s3cret@db.example/labledger"
    settings = Settings(db_url=f"sqlite:///{tmp_path}/x.sqlite3", data_dir=tmp_path)
    with TestClient(create_app(settings)) as api:
        body = api.get("/settings").json()
        assert body["settings"]["db_url"].startswith("sqlite:///")
        assert "schema" not in body
        with_schema = api.get("/settings", params={"include_schema": True}).json()
        assert with_schema["schema_title"] == "Settings"
        only_changed = api.get("/settings", params={"include_defaults": False}).json()
        assert (
            "db_url" in only_changed["settings"] and "manager_name" not in only_changed["settings"]
        )
    assert "s3cret" not in Settings(db_url=url).public()["db_url"]


def test_definition_from_a_manager_definition_yaml(tmp_path: Path) -> None:
    definition = tmp_path / "experiment.manager.yaml"
    definition.write_text(f"name: Lab EM\ndescription: the lab's\nmanager_id: {ULID}\n")
    settings = Settings(
        db_url=f"sqlite:///{tmp_path}/x.sqlite3", data_dir=tmp_path, manager_definition=definition
    )
    with TestClient(create_app(settings)) as api:
        body = api.get("/definition").json()
        assert body == {
            "name": "Lab EM",
            "description": "the lab's",
            "manager_id": ULID,
            "experiment_manager_id": ULID,
            "manager_type": "experiment_manager",
        }
        exp = api.post("/experiment", json={"experiment_design": {"experiment_name": "a"}}).json()
        assert exp["ownership_info"]["manager_id"] == ULID
        assert api.get("/openapi.json").json()["info"]["title"] == "Lab EM"
