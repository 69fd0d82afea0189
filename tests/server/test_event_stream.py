"""Following the event log live over Server-Sent Events, against a real `labledger serve`."""

from __future__ import annotations

import threading
import time

import httpx

from labledger.client import ExperimentClient
from labledger.core.models import Event
from labledger_fixtures import LiveServerFactory


def _follow(
    url: str, campaign_id: str, out: list[Event], done: threading.Event, after: int | None = None
) -> None:
    with ExperimentClient(url) as client:
        for event in client.follow_events(campaign_id=campaign_id, after=after):
            out.append(event)
            if event.type.value == "campaign_status_changed" and event.to_status == "completed":
                break
    done.set()


def test_a_follower_receives_every_event_of_a_campaign_in_order(
    live_server: LiveServerFactory,
) -> None:
    server = live_server()
    with ExperimentClient(server.url) as client:
        campaign = client.create_campaign(
            {
                "name": "live",
                "design": {"experiment_name": "t"},
                "sweep": {"list": [{"n": 1}, {"n": 2}, {"n": 3}]},
            }
        )
        cid = campaign.campaign_id
        other = client.create_campaign({"name": "noise"})  # events of another campaign
        seen: list[Event] = []
        done = threading.Event()
        follower = threading.Thread(
            target=_follow, args=(server.url, cid, seen, done, 0), daemon=True
        )
        follower.start()
        deadline = time.monotonic() + 10
        while len(seen) < 4:  # wait for the replay of the creation events
            assert time.monotonic() < deadline, seen
            time.sleep(0.05)
        client.start_experiment({"experiment_name": "noise"}, campaign_id=other.campaign_id)
        for _ in range(3):
            exp = client.claim("w")
            assert exp is not None
            client.add_result(exp.experiment_id, "n2", exp.parameters["n"] ** 2)
            client.add_milestone(exp.experiment_id, "half", {"at": 0.5})
            client.finish_experiment(exp.experiment_id, worker_id="w")
        assert done.wait(20), [e.type.value for e in seen]
        logged = client.get_events(campaign_id=cid, limit=10_000)
    assert [e.event_id for e in seen] == [e.event_id for e in logged]
    assert [e.type.value for e in seen][:4] == ["campaign_created", "created", "created", "created"]
    assert {e.campaign_id for e in seen} == {cid}
    assert sum(e.type.value == "result_added" for e in seen) == 3


def test_the_stream_resumes_after_last_event_id(live_server: LiveServerFactory) -> None:
    server = live_server()
    with ExperimentClient(server.url) as client:
        campaign = client.create_campaign(
            {"name": "resume", "design": {"experiment_name": "t"}, "sweep": {"list": [{"n": 1}]}}
        )
        logged = client.get_events(campaign_id=campaign.campaign_id)
    middle = logged[0].event_id
    with (
        httpx.Client(base_url=server.url, timeout=10) as http,
        http.stream(
            "GET",
            "events/stream",
            params={"campaign_id": campaign.campaign_id},
            headers={"Last-Event-ID": str(middle)},
        ) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        ids: list[str] = []
        for line in response.iter_lines():
            if line.startswith("id:"):
                ids.append(line.split(":", 1)[1].strip())
            if len(ids) == len(logged):  # "ready" + the events after the middle one
                break
    assert ids == [str(middle)] + [str(e.event_id) for e in logged[1:]]
    unknown = httpx.get(
        f"{server.url}events/stream",
        params={"campaign_id": "01JC0000000000000000000000"},
        timeout=10,
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "campaign_not_found"
