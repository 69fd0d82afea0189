"""SIGKILL the server in the middle of creating a campaign with its sweep of experiments.

PostgreSQL lets the test hold the experiments table locked, so the server is caught for certain
between writing the campaign and writing its experiments, and killed there. After the restart
there must be no campaign without its experiments; the client's retry with the same
Idempotency-Key then creates the whole campaign once.
"""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from labledger_fixtures import LiveServerFactory

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

SPEC = {
    "campaign_name": "temperature sweep",
    "experiment_design": {"experiment_name": "titration"},
    "sweep": {"grid": {"temperature": [20, 25, 30, 35]}},
}


def _waiting_on_a_lock(psycopg_conn: object, dbname: str) -> bool:
    row = psycopg_conn.execute(  # type: ignore[attr-defined]
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
        (dbname,),
    ).fetchone()
    return bool(row[0])


def test_a_campaign_is_created_whole_or_not_at_all(
    live_server: LiveServerFactory, pg_url: str
) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    server = live_server(pg_url)
    url = make_url(pg_url)
    dsn = f"host={url.host} port={url.port} user={url.username} dbname={url.database}"
    key = {"Idempotency-Key": str(uuid.uuid4())}
    answers: list[object] = []

    def create() -> None:
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                answers.append(http.post("campaigns", json=SPEC, headers=key).status_code)
        except httpx.HTTPError as exc:
            answers.append(exc)

    with psycopg.connect(dsn, autocommit=True) as watcher, psycopg.connect(dsn) as locker:
        locker.execute("LOCK TABLE experiments IN ACCESS EXCLUSIVE MODE")
        writer = threading.Thread(target=create)
        writer.start()
        deadline = time.monotonic() + 20
        while not _waiting_on_a_lock(watcher, str(url.database)):
            assert time.monotonic() < deadline, "the server never reached the experiments"
            time.sleep(0.05)
        server.kill()
        locker.rollback()
        writer.join(timeout=30)
    assert len(answers) == 1 and not isinstance(answers[0], int), answers

    server.start()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("campaigns").json() == []
        assert http.get("experiments/count").json() == {"count": 0}
        retried = http.post("campaigns", json=SPEC, headers=key)
        assert retried.status_code == 201, retried.text
        again = http.post("campaigns", json=SPEC, headers=key)
        assert again.json() == retried.json()
        (campaign,) = http.get("campaigns").json()
        assert len(campaign["experiment_ids"]) == 4
        assert http.get("experiments/count").json() == {"count": 4}
