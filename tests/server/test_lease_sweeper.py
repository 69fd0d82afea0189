"""The server's own sweeper expires leases even when no worker is claiming."""

from __future__ import annotations

import time

from labledger.client import ExperimentClient
from labledger_fixtures import LiveServerFactory


def test_the_server_requeues_then_fails_an_abandoned_experiment(
    live_server: LiveServerFactory,
) -> None:
    server = live_server(env={"EXPERIMENT_SWEEP_INTERVAL": "0.2", "EXPERIMENT_MAX_ATTEMPTS": "2"})
    with ExperimentClient(server.url) as client:
        exp = client.start_experiment({"experiment_name": "abandoned"}, status="queued")
        assert client.claim("gone-1", lease_seconds=0.5) is not None

        def wait_for(status: str) -> None:
            deadline = time.monotonic() + 10
            while client.get_experiment(exp.experiment_id).status.value != status:
                assert time.monotonic() < deadline, client.get_experiment_events(exp.experiment_id)
                time.sleep(0.1)

        wait_for("queued")  # nobody claimed: the periodic sweep did it
        assert client.claim("gone-2", lease_seconds=0.5) is not None
        wait_for("failed")  # second of two attempts: not retried again
        final = client.get_experiment(exp.experiment_id)
        assert final.attempts == 2 and final.metadata["error"]["type"] == "LeaseExpired"
        expired = [
            (e.data["worker_id"], e.to_status)
            for e in client.get_experiment_events(exp.experiment_id)
            if e.type.value == "lease_expired"
        ]
        assert expired == [("gone-1", "queued"), ("gone-2", "failed")]
