"""SIGKILL the real server under a sustained write load; every acknowledged write survives.

Writers create experiments with our client as fast as the server takes them and note every id
it acknowledged with 2xx. The server is killed (SIGKILL, no chance to flush anything) in the
middle of it, twice, and restarted; then every acknowledged experiment must be there with its
``created`` event, and the database must pass an integrity check (SQLite ``PRAGMA
integrity_check``; PostgreSQL a consistency query and ``pg_amcheck`` on tables and indexes).
The write rate held during the load is printed, for the record.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from labledger.client import ExperimentClient
from labledger.client.wire import RetryPolicy
from labledger.storage.engine import create_db_engine
from labledger_fixtures import PG_BINDIR, LiveServer, LiveServerFactory

pytestmark = pytest.mark.slow

WRITERS = 4
LOAD_SECONDS = 2.0
ROUNDS = 2


@dataclass
class Load:
    """Acknowledged ids and the errors seen by the writers."""

    acknowledged: list[str] = field(default_factory=list)
    failures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


def _writer(url: str, load: Load, number: int) -> None:
    no_retry = RetryPolicy(retries=0)
    with ExperimentClient(url, retry=no_retry, timeout=5.0) as client:
        i = 0
        while not load.stop.is_set():
            i += 1
            try:
                exp = client.start_experiment(
                    {"experiment_name": f"load {number}-{i}"},
                    parameters={"writer": number, "i": i},
                )
            except Exception:  # the server is being killed: count and go on
                with load.lock:
                    load.failures += 1
                time.sleep(0.02)
                continue
            with load.lock:
                load.acknowledged.append(exp.experiment_id)


def _round(server: LiveServer, load: Load) -> tuple[int, float]:
    """Write for LOAD_SECONDS, SIGKILL the server while writers are busy; return (acked, s)."""
    before = len(load.acknowledged)
    load.stop.clear()
    threads = [
        threading.Thread(target=_writer, args=(server.url, load, n), daemon=True)
        for n in range(WRITERS)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    time.sleep(LOAD_SECONDS)
    server.kill()
    elapsed = time.monotonic() - started
    time.sleep(0.3)  # writers see the dead server
    load.stop.set()
    for t in threads:
        t.join(timeout=30)
    return len(load.acknowledged) - before, elapsed


def _check_all_present(server: LiveServer, acknowledged: list[str]) -> list[str]:
    missing = []
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for exp_id in acknowledged:
            if http.get(f"experiment/{exp_id}").status_code != 200:
                missing.append(exp_id)
    return missing


def _consistency(db_url: str) -> dict[str, int]:
    engine = create_db_engine(db_url)
    try:
        with engine.connect() as conn:
            return {
                "without_created_event": conn.execute(
                    text(
                        "SELECT count(*) FROM experiments x WHERE NOT EXISTS (SELECT 1 FROM "
                        "events e WHERE e.experiment_id = x.id AND e.type = 'created')"
                    )
                ).scalar_one(),
                "events_without_experiment": conn.execute(
                    text(
                        "SELECT count(*) FROM events e WHERE e.experiment_id IS NOT NULL AND "
                        "NOT EXISTS (SELECT 1 FROM experiments x WHERE x.id = e.experiment_id)"
                    )
                ).scalar_one(),
                "experiments": conn.execute(text("SELECT count(*) FROM experiments")).scalar_one(),
            }
    finally:
        engine.dispose()


def _sqlite_integrity(db_url: str) -> list[str]:
    engine = create_db_engine(db_url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.exec_driver_sql("PRAGMA integrity_check")]
    finally:
        engine.dispose()


def _pg_amcheck(db_url: str) -> subprocess.CompletedProcess[str]:
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    return subprocess.run(
        [
            str(PG_BINDIR / "pg_amcheck"),
            "--install-missing",
            "--heapallindexed",
            "-h",
            str(url.host),
            "-p",
            str(url.port),
            "-U",
            str(url.username),
            "-d",
            str(url.database),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_sigkill_under_write_load_loses_no_acknowledged_write(
    live_server: LiveServerFactory, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    server = live_server(db_url)
    load = Load()
    held: list[float] = []
    for _ in range(ROUNDS):
        acked, seconds = _round(server, load)
        assert acked > 0, "the writers got nothing acknowledged before the kill"
        held.append(acked / seconds)
        server.start()
    missing = _check_all_present(server, load.acknowledged)
    server.stop()
    counts = _consistency(db_url)
    backend = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    with capsys.disabled():
        print(
            f"\n[crash {backend}] {len(load.acknowledged)} acknowledged writes over {ROUNDS} "
            f"SIGKILLs, {len(missing)} lost; write rate held {min(held):.0f}-{max(held):.0f}/s "
            f"({WRITERS} writers); {load.failures} requests failed during the kills; "
            f"{counts['experiments']} experiments stored"
        )
    assert missing == []
    assert counts["without_created_event"] == 0
    assert counts["events_without_experiment"] == 0
    assert len(set(load.acknowledged)) == len(load.acknowledged)
    assert counts["experiments"] >= len(load.acknowledged)
    if backend == "sqlite":
        assert _sqlite_integrity(db_url) == ["ok"]
    else:
        if not (PG_BINDIR / "pg_amcheck").exists():
            pytest.skip(f"pg_amcheck not in {PG_BINDIR}; the consistency query passed")
        checked = _pg_amcheck(db_url)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_sqlite_file_after_sigkill_opens_in_a_fresh_process(
    live_server: LiveServerFactory, sqlite_url: str, tmp_path: Path
) -> None:
    """The WAL left by a killed server is recovered by the next opener (here: plain sqlite3)."""
    server = live_server(sqlite_url)
    load = Load()
    acked, _ = _round(server, load)
    assert acked > 0
    path = sqlite_url.removeprefix("sqlite:///")
    assert os.path.exists(path + "-wal")
    import sqlite3

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        placeholders = ",".join("?" * len(load.acknowledged))
        found = conn.execute(
            f"SELECT count(*) FROM experiments WHERE id IN ({placeholders})", load.acknowledged
        ).fetchone()[0]
    assert found == len(load.acknowledged)
