"""The worker gives a claimed experiment back on Ctrl-C, whatever moment the Ctrl-C comes at."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from labledger.client import ExperimentClient
from labledger.client.worker import Control, Worker
from labledger.core.models import Experiment
from labledger_fixtures import LiveServerFactory


def _interrupt(_: Any = None) -> None:
    signal.raise_signal(signal.SIGINT)


def _never_runs(experiment: Experiment, control: Control) -> Mapping[str, Any] | None:
    raise AssertionError("the experiment should not have started")


def _interrupted_at_once(experiment: Experiment, control: Control) -> Mapping[str, Any] | None:
    _interrupt()
    raise AssertionError("not reached")


def _assert_given_back(client: ExperimentClient, experiment_id: str) -> None:
    back = client.get_experiment(experiment_id)
    assert (back.status.value, back.worker_id) == ("queued", None)
    last = client.get_experiment_events(experiment_id)[-1]
    assert (last.to_status, last.data["reason"]) == ("queued", "worker interrupted")


def _claim_answered_then_interrupted(worker: Worker) -> None:
    def hook(response: httpx.Response) -> None:
        if response.request.url.path.endswith("/queue/claim"):
            _interrupt()  # the server has answered; the client has not returned the claim yet

    worker.client.http.event_hooks["response"].append(hook)


@pytest.mark.parametrize(
    ("when", "runner"),
    [
        ("while the claim's answer is read", _never_runs),
        ("as the run begins", _interrupted_at_once),
    ],
)
def test_ctrl_c_after_a_claim_gives_the_experiment_back(
    live_server: LiveServerFactory, when: str, runner: Any
) -> None:
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    server = live_server()
    with ExperimentClient(server.url) as client:
        exp = client.start_experiment({"experiment_name": "held"}, status="queued")
        with ExperimentClient(server.url) as worker_client:
            worker = Worker(
                worker_client,
                runner,
                make_client=lambda: ExperimentClient(server.url),
                worker_id="w-interrupted",
            )
            if runner is _never_runs:
                _claim_answered_then_interrupted(worker)
            with pytest.raises(KeyboardInterrupt):
                worker.run(max_experiments=1)
        _assert_given_back(client, exp.experiment_id)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
