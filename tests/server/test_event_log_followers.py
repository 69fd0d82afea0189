"""Followers of the event log (SSE with Last-Event-ID, webhooks, the MADSci Event Manager
forwarder) get every committed event exactly once, in log order, whatever order the writing
transactions commit in, with several writers and two server replicas on one database."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from labledger.client import ExperimentClient
from labledger.client.sse import parse_lines
from labledger.storage.engine import create_db_engine
from labledger.storage.tables import events
from labledger_fixtures import LiveServer, LiveServerFactory

WAIT_SECONDS = 60.0


class Receiver:
    """A real webhook and MADSci Event Manager endpoint that keeps the event ids it is sent."""

    def __init__(self) -> None:
        self.hook: list[int] = []
        self.event_manager: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/hook":
                    receiver.hook.append(body["event_id"])
                else:
                    receiver.event_manager.append(body["event_data"]["labledger_event"]["event_id"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.env = {
            "EXPERIMENT_WEBHOOK_URLS": json.dumps([f"{self.url}/hook"]),
            "EXPERIMENT_EVENT_MANAGER_URL": f"{self.url}/em",
        }


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    thread = threading.Thread(target=rec.server.serve_forever, daemon=True)
    thread.start()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


class Follower:
    """Follows ``GET /events/stream`` in a thread; reconnects with ``Last-Event-ID`` after every
    ``reconnect_every`` events, as a browser does after a dropped connection."""

    def __init__(self, base_url: str, last_event_id: int, reconnect_every: int = 0) -> None:
        self.base_url = base_url
        self.last_event_id = last_event_id
        self.reconnect_every = reconnect_every
        self.ids: list[int] = []
        self.connected = threading.Event()
        self.stopped = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with httpx.Client(timeout=httpx.Timeout(10.0, read=None)) as http:
                while not self.stopped.is_set():
                    self._follow_once(http)
        except BaseException as exc:  # reported by the test
            if not self.stopped.is_set():
                self.error = exc

    def _follow_once(self, http: httpx.Client) -> None:
        headers = {"Last-Event-ID": str(self.last_event_id)}
        with http.stream("GET", f"{self.base_url}events/stream", headers=headers) as response:
            assert response.status_code == 200, response.read()
            received = 0
            for message in parse_lines(response.iter_lines()):
                if message.event == "ready":
                    self.connected.set()
                    continue
                assert message.id is not None
                self.ids.append(int(message.id))
                self.last_event_id = int(message.id)
                received += 1
                if self.stopped.is_set():
                    return
                if self.reconnect_every and received >= self.reconnect_every:
                    return


def wait_for(condition: Callable[[], bool], what: Callable[[], Any]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, what()
        time.sleep(0.05)


def logged_ids(server: LiveServer, after: int) -> list[int]:
    ids: list[int] = []
    with httpx.Client(base_url=server.url) as http:
        while True:
            page = http.get("/events", params={"after": after, "limit": 10_000}).json()
            if not page:
                return ids
            ids += [e["event_id"] for e in page]
            after = ids[-1]


def max_event_id(server: LiveServer) -> int:
    return max(logged_ids(server, 0), default=0)


def assert_every_follower_got(
    expected: list[int],
    followers: list[Follower],
    receiver: Receiver,
    already: list[int] | None = None,
) -> None:
    """Each SSE follower got ``expected``; each forwarding target ``already`` + ``expected``."""
    forwarded = [*(already or []), *expected]

    def all_arrived() -> bool:
        return all(len(f.ids) >= len(expected) for f in followers) and (
            len(receiver.hook) >= len(forwarded) and len(receiver.event_manager) >= len(forwarded)
        )

    def state() -> dict[str, Any]:
        return {
            "expected": len(expected),
            "sse": [len(f.ids) for f in followers],
            "sse_errors": [repr(f.error) for f in followers],
            "hook": len(receiver.hook),
            "event_manager": len(receiver.event_manager),
            "missed_by_hook": sorted(set(forwarded) - set(receiver.hook))[:10],
        }

    wait_for(all_arrived, state)
    time.sleep(1.5)  # three forwarding polls and six SSE polls: anything extra would show now
    for follower in followers:
        assert follower.error is None
        assert follower.ids == expected  # every event, once, in log order
    assert receiver.hook == forwarded
    assert receiver.event_manager == forwarded


@pytest.mark.postgres
def test_an_event_committed_after_later_ones_reaches_every_follower(
    live_server: LiveServerFactory, pg_url: str, receiver: Receiver
) -> None:
    server = live_server(pg_url, env={**receiver.env, "EXPERIMENT_FORWARD_RETRY_MAX": "0.5"})
    with ExperimentClient(server.url) as client:
        exp = client.start_experiment({"experiment_name": "held"})
        start = max_event_id(server)
        wait_for(lambda: receiver.hook == [start], lambda: receiver.hook)
        wait_for(lambda: receiver.event_manager == [start], lambda: receiver.event_manager)
        follower = Follower(server.url, last_event_id=start)
        assert follower.connected.wait(WAIT_SECONDS)
        engine = create_db_engine(pg_url)
        try:
            with engine.connect() as held:
                transaction = held.begin()
                # an event inserted first, by a transaction that commits last
                held.execute(
                    insert(events).values(
                        experiment_id=exp.experiment_id,
                        type="updated",
                        actor="held transaction",
                        at=datetime.now(UTC),
                        data={"changes": {"note": "committed last"}},
                    )
                )
                client.pause_experiment(exp.experiment_id)
                client.continue_experiment(exp.experiment_id)
                early = logged_ids(server, start)
                assert len(early) == 2
                wait_for(lambda: follower.ids == early, lambda: follower.ids)
                wait_for(lambda: receiver.hook == [start, *early], lambda: receiver.hook)
                wait_for(lambda: len(receiver.event_manager) == 3, lambda: receiver.event_manager)
                transaction.commit()
        finally:
            engine.dispose()
    expected = logged_ids(server, start)
    assert len(expected) == 3 and expected[:2] == early
    # the same follower, and one that reconnects with the last id it saw
    again = Follower(server.url, last_event_id=early[-1])
    try:
        assert_every_follower_got(expected, [follower], receiver, already=[start])
        wait_for(lambda: len(again.ids) >= 1, lambda: again.ids)
        assert again.ids == expected[2:]
    finally:
        follower.stopped.set()
        again.stopped.set()


WRITERS = 16
EXPERIMENTS_PER_WRITER = 12  # 4 events each: 768 events in all


def test_sixteen_writers_on_two_replicas_every_event_reaches_every_follower_once(
    live_server: LiveServerFactory, db_url: str, receiver: Receiver
) -> None:
    replicas = [live_server(db_url, env=receiver.env) for _ in range(2)]
    start = max_event_id(replicas[0])
    # the forwarders start at the end of the log: wait until they caught up with startup
    followers = [
        Follower(replicas[0].url, last_event_id=start),
        Follower(replicas[1].url, last_event_id=start, reconnect_every=50),
    ]
    for follower in followers:
        assert follower.connected.wait(WAIT_SECONDS)

    def write(writer: int) -> None:
        server = replicas[writer % 2]
        with ExperimentClient(server.url) as client:
            for n in range(EXPERIMENTS_PER_WRITER):
                exp = client.start_experiment({"experiment_name": f"w{writer}-{n}"})
                client.pause_experiment(exp.experiment_id)
                client.continue_experiment(exp.experiment_id)
                client.end_experiment(exp.experiment_id)

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(write, range(WRITERS)))
    expected = logged_ids(replicas[0], start)
    assert len(expected) == WRITERS * EXPERIMENTS_PER_WRITER * 4
    try:
        assert_every_follower_got(expected, followers, receiver)
    finally:
        for follower in followers:
            follower.stopped.set()
