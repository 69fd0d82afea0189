"""An in-process app over a real database, driven through Starlette's TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from labledger.server.app import create_app
from labledger.settings import Settings
from labledger.storage.engine import create_db_engine
from labledger.storage.sql import SqlStore


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The real app on SQLite and on PostgreSQL."""
    app = create_app(Settings(db_url=db_url, data_dir=tmp_path))
    with TestClient(app) as client:
        yield client


@pytest.fixture
def sqlite_api(sqlite_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """The real app on SQLite only (for tests that do not depend on the backend)."""
    app = create_app(Settings(db_url=sqlite_url, data_dir=tmp_path))
    with TestClient(app) as client:
        yield client


@pytest.fixture
def api_and_store(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, SqlStore]]:
    """The real app, and a store of its own over the same database (to write rows the API
    would refuse, as an import may have)."""
    app = create_app(Settings(db_url=db_url, data_dir=tmp_path))
    engine = create_db_engine(db_url)
    with TestClient(app) as client:
        yield client, SqlStore(engine)
    engine.dispose()
