"""PostgreSQL connections from the pool: one that died while idle is replaced before use."""

from __future__ import annotations

import time

import pytest

from labledger.storage import engine as engine_module
from labledger.storage.engine import create_db_engine, single_statement, write_transaction


@pytest.mark.postgres
def test_a_connection_killed_while_idle_is_replaced_before_use(pg_url: str) -> None:
    engine = create_db_engine(pg_url, pool_size=1)
    other = create_db_engine(pg_url, pool_size=1)
    try:
        with single_statement(engine) as conn:
            first = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with write_transaction(other) as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend({first})")
        # the pooled connection is now dead; once it has been idle long enough, it is checked
        time.sleep(engine_module.IDLE_PING_SECONDS + 0.1)
        with single_statement(engine) as conn:
            second = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        assert second != first
        with write_transaction(engine) as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        engine.dispose()
        other.dispose()
