"""The Python client against the real server: MADSci method names, errors from the error tree."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest

from labledger.client import AsyncExperimentClient, ExperimentClient
from labledger.client.wire import RetryPolicy
from labledger.core.lifecycle import ExperimentStatus
from labledger.core.models import ExperimentalCampaign, ExperimentDesign
from labledger.errors import (
    CampaignNotFound,
    ConcurrentUpdate,
    ConfigError,
    ExperimentNotFound,
    IllegalTransition,
    InvalidInput,
    LabledgerError,
    LeaseLost,
    MissingDependency,
    RateLimited,
    RunNotFound,
    SchemaOutdated,
    ServerUnreachable,
    StorageError,
)
from labledger.server.app import create_app
from labledger.settings import Settings
from labledger_fixtures import LiveServerFactory

S = ExperimentStatus


def test_sync_client_walks_the_lifecycle_over_real_http(live_server: LiveServerFactory) -> None:
    server = live_server()
    with ExperimentClient(server.url) as client:
        exp = client.start_experiment(
            ExperimentDesign(experiment_name="titration", parameters={"ph": 7}),
            run_name="first",
            parameters={"ph": 8},
        )
        assert exp.status is S.IN_PROGRESS and exp.parameters == {"ph": 8}
        assert client.get_experiment(exp.experiment_id).run_name == "first"
        assert client.pause_experiment(exp.experiment_id).status is S.PAUSED
        assert client.continue_experiment(exp.experiment_id).status is S.IN_PROGRESS
        ended = client.end_experiment(exp.experiment_id, status=S.FAILED)
        assert ended.status is S.FAILED and ended.ended_at is not None
        with pytest.raises(IllegalTransition) as info:
            client.continue_experiment(exp.experiment_id)
        assert info.value.current == "failed" and info.value.requested == "in_progress"
        with pytest.raises(ExperimentNotFound):
            client.get_experiment("01JC0000000000000000000000")
        queued = client.start_experiment({"experiment_name": "later"}, status="queued")
        assert queued.status is S.QUEUED
        assert [e.experiment_id for e in client.get_experiments(status="queued")] == [
            queued.experiment_id
        ]
        assert client.count_experiments() == 2
        camp = client.register_campaign(
            ExperimentalCampaign(campaign_name="c", experiment_ids=[exp.experiment_id])
        )
        assert client.get_campaign(camp.campaign_id).experiment_ids == [exp.experiment_id]
        assert [c.campaign_id for c in client.get_campaigns()] == [camp.campaign_id]
        renamed = client.update_experiment(queued.experiment_id, run_name="renamed")
        assert renamed.run_name == "renamed"
        client.delete_experiment(queued.experiment_id)
        assert [e.experiment_id for e in client.list_trash()] == [queued.experiment_id]
        events = client.get_experiment_events(exp.experiment_id)
        assert [e.to_status for e in events] == ["in_progress", "paused", "in_progress", "failed"]


def test_client_decodes_validation_errors_with_the_field(live_server: LiveServerFactory) -> None:
    server = live_server()
    with ExperimentClient(server.url) as client:
        with pytest.raises(InvalidInput) as info:
            client.get_experiments(since=__import__("datetime").datetime(2026, 1, 1))
        assert info.value.details["field"] == "since"


def test_data_survives_a_restart(live_server: LiveServerFactory) -> None:
    server = live_server()
    with ExperimentClient(server.url) as client:
        exp = client.start_experiment({"experiment_name": "durable"})
        client.pause_experiment(exp.experiment_id)
    server.restart()
    with ExperimentClient(server.url) as client:
        again = client.get_experiment(exp.experiment_id)
        assert again.status is S.PAUSED and again.name == "durable"


def test_post_is_not_retried_after_the_server_may_have_acted() -> None:
    """A POST that reached a server which then failed is not sent again (no duplicate)."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("Idempotency-Key", ""))
        return httpx.Response(502, json={"detail": "bad gateway"})

    transport = httpx.MockTransport(handler)
    client = ExperimentClient(
        "http://lab.invalid", transport=transport, retry=RetryPolicy(backoff=0)
    )
    with client, pytest.raises(Exception, match="502"):
        client.start_experiment({"experiment_name": "x"})
    assert len(seen) == 1 and seen[0]


def test_post_is_retried_with_the_same_key_when_refused_unprocessed() -> None:
    keys: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["Idempotency-Key"])
        if len(keys) < 3:
            return httpx.Response(503, headers={"Retry-After": "0"}, json={"detail": "busy"})
        return httpx.Response(
            200, json={"_id": "01JC0000000000000000000001", "lifecycle_status": "queued"}
        )

    client = ExperimentClient(
        "http://lab.invalid", transport=httpx.MockTransport(handler), retry=RetryPolicy(backoff=0)
    )
    with client:
        exp = client.start_experiment({"experiment_name": "x"})
    assert exp.status is S.QUEUED
    assert len(keys) == 3 and len(set(keys)) == 1


def test_connection_refused_is_retried_then_raised() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = ExperimentClient(f"http://127.0.0.1:{port}", retry=RetryPolicy(retries=2, backoff=0))
    with client, pytest.raises(ServerUnreachable, match=f"127.0.0.1:{port}") as raised:
        client.get_experiments()
    assert "labledger serve" in str(raised.value)
    assert isinstance(raised.value.__cause__, httpx.ConnectError)


def test_async_client_drives_the_app_in_process(sqlite_url: str, tmp_path: Path) -> None:
    app = create_app(Settings(db_url=sqlite_url, data_dir=tmp_path))

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with AsyncExperimentClient("http://test", transport=transport) as client:
            exp = await client.start_experiment({"experiment_name": "async"}, run_name="a")
            assert (await client.pause_experiment(exp.experiment_id)).status is S.PAUSED
            assert (await client.cancel_experiment(exp.experiment_id)).ended_at is not None
            with pytest.raises(IllegalTransition):
                await client.end_experiment(exp.experiment_id)
            listed = await client.get_experiments(number=5)
            assert [e.experiment_id for e in listed] == [exp.experiment_id]
            health = await client.health()
            assert health["healthy"] is True

    asyncio.run(scenario())
    app.state.lab.close()


SERVER_ERRORS = [
    InvalidInput("number: expected an integer", field="number"),
    ConfigError("a.yaml: bad", path="a.yaml", field="sweep"),
    ExperimentNotFound("01JC0000000000000000000001"),
    CampaignNotFound("01JC0000000000000000000002"),
    RunNotFound("7", hint="see `labledger list`"),
    IllegalTransition("completed", "paused", entity="campaign", entity_id="c1", action="pause"),
    LeaseLost("e1", "w1", "w2", "in_progress"),
    ConcurrentUpdate("e1 kept changing", experiment_id="e1"),
    RateLimited("slow down", retry_after=3),
    SchemaOutdated("0002", "0004", "labledger db upgrade"),
    MissingDependency("psycopg", "postgres"),
    StorageError("database is locked"),
]


@pytest.mark.parametrize("error", SERVER_ERRORS, ids=lambda e: type(e).__name__)
def test_server_errors_come_back_as_their_own_class(error: LabledgerError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(error.status_code, json={"error": error.to_dict()})

    client = ExperimentClient(
        "http://lab.invalid", transport=httpx.MockTransport(handler), retry=RetryPolicy(retries=0)
    )
    with client, pytest.raises(type(error)) as raised:
        client.get_experiment("e1")
    assert type(raised.value) is type(error)
    assert raised.value.to_dict() == error.to_dict()
    assert str(raised.value) == str(error)
