"""Events forwarded to a webhook and a MADSci Event Manager, retried after an outage."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from labledger.client import ExperimentClient
from labledger_fixtures import LiveServerFactory


class Receiver:
    """A real HTTP endpoint that records what it is sent and fails while ``down`` is set."""

    def __init__(self) -> None:
        self.received: dict[str, list[dict[str, Any]]] = {"/hook": [], "/em/event": []}
        self.refused = 0
        self.down = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.down.is_set():
                    receiver.refused += 1
                    self.send_response(503)
                else:
                    receiver.received[self.path].append(json.loads(body))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    rec.thread.start()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def test_events_reach_the_webhook_and_event_manager_after_an_outage(
    live_server: LiveServerFactory, receiver: Receiver
) -> None:
    receiver.down.set()
    server = live_server(
        env={
            "EXPERIMENT_WEBHOOK_URLS": json.dumps([f"{receiver.url}/hook"]),
            "EXPERIMENT_EVENT_MANAGER_URL": f"{receiver.url}/em",
            "EXPERIMENT_FORWARD_RETRY_MAX": "0.5",
        }
    )
    with ExperimentClient(server.url) as client:
        # the targets are down: experiments go on regardless
        exp = client.start_experiment({"experiment_name": "forwarded"})
        client.pause_experiment(exp.experiment_id)
        client.continue_experiment(exp.experiment_id)
        client.finish_experiment(
            exp.experiment_id, "failed", error={"type": "E", "message": "boom"}
        )
        deadline = time.monotonic() + 10
        while receiver.refused == 0:
            assert time.monotonic() < deadline, "the forwarder never tried"
            time.sleep(0.05)
        receiver.down.clear()
        logged = client.get_events(experiment_id=exp.experiment_id)
        deadline = time.monotonic() + 15
        while len(receiver.received["/em/event"]) < len(logged) or len(
            receiver.received["/hook"]
        ) < len(logged):
            assert time.monotonic() < deadline, receiver.received
            time.sleep(0.05)
    hook = receiver.received["/hook"]
    assert [e["event_id"] for e in hook] == [e.event_id for e in logged]  # all, once, in order
    madsci = receiver.received["/em/event"]
    assert [e["event_type"] for e in madsci] == [
        "experiment_create",
        "experiment_pause",
        "experiment_continued",
        "experiment_failed",
    ]
    assert all(len(e["event_id"]) == 26 for e in madsci)
    assert madsci[-1]["source"]["experiment_id"] == exp.experiment_id
    assert madsci[-1]["log_level"] == 40
    assert madsci[-1]["event_data"]["labledger_event"]["data"]["error"]["message"] == "boom"


def test_settings_never_show_a_webhooks_secret(sqlite_url: str, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from labledger.server.app import create_app
    from labledger.settings import Settings

    secret = "https://hooks.example.com/services/T000/B000/XXSECRETXX"
    app = create_app(Settings(db_url=sqlite_url, data_dir=tmp_path, webhook_urls=[secret]))
    shown = TestClient(app).get("/settings").json()["settings"]
    assert shown["webhook_urls"] == ["https://hooks.example.com/…"]
    assert "XXSECRETXX" not in json.dumps(shown)


def test_two_replicas_forward_each_event_once(db_url: str, receiver: Receiver) -> None:
    import asyncio

    import httpx

    from labledger.core.lab import Lab
    from labledger.core.models import ExperimentRegistration
    from labledger.server.forwarding import Forwarder, Target
    from labledger.storage.engine import create_db_engine
    from labledger.storage.schema import ensure_ready
    from labledger.storage.sql import SqlStore

    engine = create_db_engine(db_url)
    ensure_ready(engine, db_url)
    store = SqlStore(engine)
    target = Target(f"{receiver.url}/hook", "webhook")
    replicas = [Forwarder(store, [target]), Forwarder(store, [target])]
    lab = Lab(store)

    async def scenario() -> None:
        await replicas[0].prime()
        await replicas[1].prime()
        reg = ExperimentRegistration.model_validate({"experiment_design": {"experiment_name": "r"}})
        for _ in range(30):
            lab.experiments.create_experiment(reg)
        async with httpx.AsyncClient() as http:
            for _ in range(10):
                await asyncio.gather(*(r.forward_once(http, target) for r in replicas))

    try:
        asyncio.run(scenario())
        ids = [e["event_id"] for e in receiver.received["/hook"]]
        assert len(ids) == 30 and ids == sorted(set(ids))  # all, once each, in order
    finally:
        engine.dispose()


def test_a_target_that_never_answers_holds_up_no_other_target(sqlite_url: str) -> None:
    import asyncio

    from labledger.core.lab import Lab
    from labledger.core.models import ExperimentRegistration
    from labledger.server.forwarding import Forwarder, Target
    from labledger.storage.engine import create_db_engine
    from labledger.storage.schema import ensure_ready
    from labledger.storage.sql import SqlStore

    release = threading.Event()
    hanging = threading.Event()
    delivered: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/hang":
                hanging.set()
                release.wait()  # accepts, never answers (until the test ends)
                return
            delivered.append(body["event_id"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    engine = create_db_engine(sqlite_url)
    ensure_ready(engine, sqlite_url)
    store = SqlStore(engine)
    lab = Lab(store)
    # longer than the test waits: the good target must not wait for the hanging one to time out
    forwarder = Forwarder(
        store, [Target(f"{base}/hang", "webhook"), Target(f"{base}/ok", "webhook")], timeout=600
    )
    reg = ExperimentRegistration.model_validate({"experiment_design": {"experiment_name": "h"}})

    async def scenario() -> None:
        await forwarder.prime()
        task = asyncio.create_task(forwarder.run())
        try:
            for _ in range(5):
                await asyncio.to_thread(lab.experiments.create_experiment, reg)
            deadline = time.monotonic() + 60
            while len(delivered) < 5:
                assert time.monotonic() < deadline, (delivered, hanging.is_set())
                await asyncio.sleep(0.05)
            assert hanging.is_set()  # the other target is still waiting for its first answer
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    try:
        asyncio.run(scenario())
        assert delivered == sorted(delivered) and len(set(delivered)) == 5
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        engine.dispose()
