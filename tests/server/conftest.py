"""An in-process app over a real database, driven through Starlette's TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from labledger.server.app import create_app
from labledger.settings import Settings


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
