"""The shared fixtures themselves: real, fresh, separate databases, and a server we can crash."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from labledger_fixtures import LiveServerFactory, PgCluster


def test_sqlite_url_points_at_a_new_file_in_tmp_path(sqlite_url: str, tmp_path: Path) -> None:
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    assert path.parent == tmp_path
    assert not path.exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    conn.close()


@pytest.mark.postgres
def test_pg_cluster_is_postgresql_15_on_loopback(pg_cluster: PgCluster) -> None:
    engine = create_engine(pg_cluster.url("postgres"))
    try:
        with engine.connect() as conn:
            version = conn.execute(text("show server_version_num")).scalar_one()
            address = conn.execute(text("select inet_server_addr()::text")).scalar_one()
    finally:
        engine.dispose()
    assert int(version) // 10000 == 15
    assert address.startswith("127.0.0.1")


def _tables_and_name(url: str) -> tuple[str, list[str]]:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            name = conn.execute(text("select current_database()")).scalar_one()
            tables = conn.execute(
                text("select tablename from pg_tables where schemaname = 'public'")
            ).scalars()
            found = list(tables)
            conn.execute(text("create table marker (x int)"))
    finally:
        engine.dispose()
    return name, found


_seen_databases: list[str] = []


@pytest.mark.postgres
@pytest.mark.parametrize("round_", [1, 2])
def test_pg_url_is_a_fresh_empty_database_per_test(pg_url: str, round_: int) -> None:
    name, tables = _tables_and_name(pg_url)
    # The other round created a table "marker" in its own database; this one must not see it.
    assert tables == []
    assert name not in _seen_databases
    _seen_databases.append(name)
    assert pg_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")


def test_db_url_matches_its_backend(db_url: str, request: pytest.FixtureRequest) -> None:
    backend = request.node.callspec.id
    prefix = {"sqlite": "sqlite:///", "postgres": "postgresql+psycopg://"}[backend]
    assert db_url.startswith(prefix)
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("create table t (x int)"))
            conn.execute(text("insert into t values (42)"))
            assert conn.execute(text("select x from t")).scalar_one() == 42
    finally:
        engine.dispose()


def test_live_server_answers_and_keeps_its_data_across_sigkill_and_restart(
    live_server: LiveServerFactory, db_url: str
) -> None:
    server = live_server(db_url)
    body = {"experiment_design": {"experiment_name": "survivor"}}
    created = httpx.post(f"{server.url}experiment", json=body, timeout=10)
    assert created.status_code == 200, created.text
    experiment_id = created.json()["_id"]
    url, first_pid = server.url, server.pid

    assert server.kill() == -signal.SIGKILL
    assert server.process is None
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}health", timeout=2)

    server.restart()
    assert server.pid != first_pid
    assert server.url == url
    got = httpx.get(f"{server.url}experiment/{experiment_id}", timeout=10)
    assert got.status_code == 200, got.text
    assert got.json()["experiment_design"]["experiment_name"] == "survivor"

    assert server.stop() is not None
    assert server.stop() is None  # stopping twice is harmless


def test_live_server_that_cannot_start_shows_its_output(live_server: LiveServerFactory) -> None:
    server = live_server("nosuchdb://x", start=False)
    with pytest.raises(AssertionError, match="labledger serve") as info:
        server.start(timeout=10)
    assert "nosuchdb" in str(info.value)
    assert server.process is None


def test_processes_of_the_suite_never_see_the_real_home(tmp_path: Path) -> None:
    import os
    import pwd
    import subprocess
    import sys

    real_home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    code = "from labledger.settings import Settings; print(Settings().data_dir)"
    # a process started without any data folder setting: its default must be a temp folder
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_")}
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    data_dir = Path(shown.stdout.strip())
    assert shown.returncode == 0, shown.stderr
    assert not data_dir.is_relative_to(real_home), data_dir
    assert Path.home() != real_home and data_dir.is_relative_to(Path.home())
