"""Fixtures of the storage tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from labledger.storage.engine import create_db_engine
from labledger.storage.schema import ensure_ready
from labledger.storage.sql import SqlStore


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    """A store on a fresh, migrated database of each backend (``db_url``)."""
    engine = create_db_engine(db_url)
    ensure_ready(engine, db_url)
    yield SqlStore(engine)
    engine.dispose()
