"""``log_metric``: buffered, sent in the background, flushed on end/close/exit, and what the
server acknowledged survives a killed process. Real servers, real subprocesses."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pytest

from labledger.client import AsyncExperimentClient, ExperimentClient
from labledger.client.application import ExperimentApplication
from labledger.errors import ExperimentNotFound, InvalidInput
from labledger.server.app import create_app
from labledger.settings import Settings
from labledger_fixtures import LiveServerFactory


def _points(client: ExperimentClient, exp_id: str, name: str) -> list[tuple[int, float]]:
    answer = client.get_metric(exp_id, name, max_points=100_000)
    return [(p["step"], p["value"]) for p in answer["points"]]


def test_logged_points_reach_the_server_in_order_with_steps(
    live_server: LiveServerFactory,
) -> None:
    server = live_server()
    with ExperimentClient(server.url) as client:
        client.metric_batch_size = 500
        exp_id = client.start_experiment({"experiment_name": "training"}).experiment_id
        for i in range(3000):
            client.log_metric(exp_id, "loss", 1.0 / (i + 1), step=i)
            if i % 10 == 0:
                client.log_metrics(exp_id, {"accuracy": i / 3000, "lr": 0.1})
        client.flush_metrics()
        series = {s["name"]: s for s in client.list_metrics(exp_id)}
        assert series["loss"]["count"] == 3000
        assert series["loss"]["last_value"] == 1.0 / 3000
        assert series["accuracy"]["count"] == 300 and series["accuracy"]["last_step"] == 299
        assert _points(client, exp_id, "loss") == [(i, 1.0 / (i + 1)) for i in range(3000)]
        # ending the experiment sends what is still buffered first
        client.log_metric(exp_id, "loss", 0.0001)
        client.end_experiment(exp_id)
        assert client.list_metrics(exp_id)[1]["last_step"] == 3000


def test_points_without_step_continue_the_series_on_the_server(
    live_server: LiveServerFactory,
) -> None:
    server = live_server()
    with ExperimentClient(server.url) as first:
        exp_id = first.start_experiment({"experiment_name": "resumed"}).experiment_id
        for value in (3.0, 2.0):
            first.log_metric(exp_id, "loss", value)
    with ExperimentClient(server.url) as second:
        second.log_metric(exp_id, "loss", 1.0)
        second.flush_metrics()
        assert _points(second, exp_id, "loss") == [(0, 3.0), (1, 2.0), (2, 1.0)]


@pytest.mark.parametrize("value", [math.nan, math.inf, True, "0.5"], ids=repr)
def test_a_bad_value_fails_the_call_not_a_later_batch(
    live_server: LiveServerFactory, value: Any
) -> None:
    server = live_server()
    with ExperimentClient(server.url) as client:
        with pytest.raises(InvalidInput) as info:
            client.log_metric("01" + "A" * 24, "loss", value)
        assert "finite number" in info.value.message


def test_a_refused_batch_is_reported_by_flush(live_server: LiveServerFactory) -> None:
    server = live_server()
    with ExperimentClient(server.url) as client:
        exp_id = client.start_experiment({"experiment_name": "kept"}).experiment_id
        client.log_metric("01" + "A" * 24, "loss", 1.0)
        client.log_metric(exp_id, "loss", 2.0)
        with pytest.raises(ExperimentNotFound):
            client.flush_metrics()
        client.flush_metrics()  # reported once; the other experiment's point went through
        assert client.list_metrics(exp_id)[0]["last_value"] == 2.0


def test_points_logged_while_the_server_is_down_are_sent_when_it_is_back(
    live_server: LiveServerFactory,
) -> None:
    server = live_server()
    with ExperimentClient(server.url) as client:
        exp_id = client.start_experiment({"experiment_name": "outage"}).experiment_id
        client.log_metric(exp_id, "loss", 1.0)
        client.flush_metrics()
        server.kill()
        for i in range(1, 200):
            client.log_metric(exp_id, "loss", 1.0 / (i + 1))
        server.start()
        client.flush_metrics(timeout=60)
        assert _points(client, exp_id, "loss") == [(i, 1.0 / (i + 1)) for i in range(200)]


SCRIPT = """
import sys, time
from labledger.client import ExperimentClient

client = ExperimentClient(sys.argv[1])
exp_id = client.start_experiment({"experiment_name": "child"}).experiment_id
print(exp_id, flush=True)
for i in range(int(sys.argv[2])):
    client.log_metric(exp_id, "loss", float(i), step=i)
if sys.argv[3] == "flush-then-hang":
    client.flush_metrics()
    for i in range(int(sys.argv[2]), 10 * int(sys.argv[2])):
        client.log_metric(exp_id, "loss", float(i), step=i)
    print("flushed", flush=True)
    time.sleep(600)
# "exit": leave without flush or close; the exit hook sends the buffer
"""


def _child(tmp_path: Path, url: str, count: int, mode: str) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(SCRIPT))
    return subprocess.Popen(
        [sys.executable, str(script), url, str(count), mode],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )


def test_points_buffered_at_exit_are_sent(live_server: LiveServerFactory, tmp_path: Path) -> None:
    server = live_server()
    child = _child(tmp_path, server.url, 2500, "exit")
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0
    exp_id = out.split()[0]
    with ExperimentClient(server.url) as client:
        assert _points(client, exp_id, "loss") == [(i, float(i)) for i in range(2500)]


def test_a_killed_process_keeps_every_acknowledged_point(
    live_server: LiveServerFactory, tmp_path: Path
) -> None:
    server = live_server()
    child = _child(tmp_path, server.url, 2000, "flush-then-hang")
    assert child.stdout is not None
    exp_id = child.stdout.readline().strip()
    assert child.stdout.readline().strip() == "flushed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    server.restart()  # a batch on its way when the child died is either stored or not, whole
    with ExperimentClient(server.url) as client:
        points = _points(client, exp_id, "loss")
        series = client.list_metrics(exp_id)[0]
    # every flushed point is there; whatever else was sent before the kill is whole
    assert points[:2000] == [(i, float(i)) for i in range(2000)]
    assert points == [(i, float(i)) for i in range(len(points))]
    assert series["count"] == len(points) and series["last_step"] == len(points) - 1


def test_async_client_logs_in_the_background_and_flushes_on_close(
    sqlite_url: str, tmp_path: Path
) -> None:
    app = create_app(Settings(db_url=sqlite_url, data_dir=tmp_path))

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with AsyncExperimentClient("http://test", transport=transport) as client:
            client.metric_batch_size = 300
            exp_id = (await client.start_experiment({"experiment_name": "a"})).experiment_id
            for i in range(1000):
                client.log_metric(exp_id, "loss", float(i))
                if i % 100 == 0:
                    await asyncio.sleep(0)  # a training loop that yields now and then
            await client.flush_metrics()
            assert (await client.list_metrics(exp_id))[0]["count"] == 1000
            client.log_metrics(exp_id, {"loss": -1.0, "accuracy": 0.5}, step=5000)
        async with AsyncExperimentClient("http://test", transport=transport) as reader:
            series = {s["name"]: s for s in await reader.list_metrics(exp_id)}
            assert series["loss"]["last_step"] == 5000 and series["loss"]["min_value"] == -1.0
            assert series["accuracy"]["count"] == 1

    asyncio.run(scenario())


class Training(ExperimentApplication):
    def run_experiment(self, epochs: int) -> dict[str, float]:
        for epoch in range(epochs):
            self.log_metrics({"loss": 1.0 / (epoch + 1), "accuracy": epoch / epochs}, step=epoch)
        self.log_metric("loss", 0.0)
        return {"final": 1.0}


def test_experiment_application_logs_metrics_of_its_run(live_server: LiveServerFactory) -> None:
    server = live_server()
    app = Training(server_url=server.url)
    try:
        ended = app.start(epochs=50)
        series = {s["name"]: s for s in app.client.list_metrics(ended.experiment_id)}
    finally:
        app.close()
    assert series["loss"]["count"] == 51 and series["loss"]["last_value"] == 0.0
    assert series["accuracy"]["last_step"] == 49
