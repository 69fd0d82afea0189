"""A server restart under running workers: the workers ride it out, nothing fails because of it.

A real ``labledger serve`` is stopped for about ten seconds while two real ``labledger worker``
processes run experiments that record milestones, progress, a file, results and their outcome.
Their leases (30 s) outlast the outage, so every experiment completes, each once.
"""

from __future__ import annotations

import signal
import subprocess
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from labledger.client import ExperimentClient
from labledger_fixtures import LiveServerFactory, start_worker

#: how long the server stays down (the workers' leases are three times longer)
OUTAGE_SECONDS = 10.0
EXPERIMENTS = 8

APP = """
import time
from pathlib import Path

from labledger.client.application import ExperimentApplication


class Steady(ExperimentApplication):
    experiment_design = {"experiment_name": "steady"}

    def run_experiment(self, i: int) -> dict:
        for step in range(10):
            self.checkpoint("step", {"step": step}, progress=step / 10)
            time.sleep(0.2)
        out = Path(f"out-{self.experiment_id}.txt")
        out.write_text(f"run {i}\\n")
        self.attach("output", out)
        return {"square": i * i}
"""


def _wait_for(check: object, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
def test_two_workers_ride_out_a_server_restart(
    live_server: LiveServerFactory, tmp_path: Path
) -> None:
    server = live_server()
    (tmp_path / "steady_app.py").write_text(textwrap.dedent(APP))
    workers: dict[str, subprocess.Popen[bytes]] = {}
    with ExperimentClient(server.url) as client:
        campaign = client.create_campaign(
            {
                "name": "steady",
                "design": {"experiment_name": "steady"},
                "sweep": {"grid": {"i": list(range(EXPERIMENTS))}},
            }
        )
        cid = campaign.campaign_id
        try:
            for name in ("w1", "w2"):
                workers[name] = start_worker(
                    server.url,
                    "steady_app:Steady",
                    tmp_path,
                    name,
                    tmp_path / f"{name}.log",
                    lease=30,
                )
            # Stop the server while both workers are in the middle of an experiment.
            _wait_for(
                lambda: {e["worker_id"] for e in client.get_queue(cid)["running"]} == {"w1", "w2"},
                "both workers running",
                60,
            )
            running_at_stop = {e["_id"] for e in client.get_queue(cid)["running"]}
            server.stop()
            time.sleep(OUTAGE_SECONDS)  # the outage itself, not a wait for something
            assert all(proc.poll() is None for proc in workers.values())
            server.start()
            restarted_at = datetime.now(UTC)
            _wait_for(
                lambda: client.get_campaign(cid).status.value == "completed",
                "the campaign to complete",
                180,
            )
        finally:
            for proc in workers.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in workers.values():
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

        logs = "\n".join((tmp_path / f"{n}.log").read_text(errors="replace") for n in workers)
        # The outage was lived through, not slept past: an experiment that was running when the
        # server stopped could only end once it was back.
        ended = [client.get_experiment(i).ended_at for i in running_at_stop]
        assert any(at is not None and at > restarted_at for at in ended), (ended, logs)
        events = client.get_events(campaign_id=cid, limit=10_000)
        ids = set(campaign.experiment_ids or [])
        outcomes = Counter(
            e.to_status
            for e in events
            if e.experiment_id in ids and e.to_status in {"completed", "failed"}
        )
        assert outcomes == {"completed": EXPERIMENTS}, logs
        claims = Counter(e.experiment_id for e in events if e.type.value == "claimed")
        assert set(claims.values()) == {1}, (claims, logs)
        for exp_id in running_at_stop:
            assert client.get_experiment(exp_id).status.value == "completed"
            (output,) = [r for r in client.get_results(exp_id) if r.name == "output"]
            assert (output.kind.value, output.filename, output.size) == (
                "file",
                f"out-{exp_id}.txt",
                6,
            )
            assert [m.data["step"] for m in client.get_milestones(exp_id)] == list(range(10))
        rows = client.campaign_results(cid)["rows"]
        assert sorted(r["results"]["square"] for r in rows) == [i * i for i in range(EXPERIMENTS)]
