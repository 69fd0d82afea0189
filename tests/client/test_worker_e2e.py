"""End to end on PostgreSQL: a sweep, three `labledger worker` processes, one killed mid-run.

A real `labledger serve` subprocess over a throwaway PostgreSQL database; real worker
subprocesses running an ExperimentApplication subclass from a module written here. The event log
is the witness: every experiment is claimed once, except the one whose worker was SIGKILLed,
which is claimed again by another worker after its lease expired.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from labledger.client import ExperimentClient
from labledger_fixtures import LiveServerFactory, start_worker

APP = """
import os
import time

from labledger.client.application import ExperimentApplication


class Square(ExperimentApplication):
    experiment_design = {"experiment_name": "square"}

    def run_experiment(self, i: int) -> dict:
        for step in range(4):
            self.checkpoint("step", {"step": step}, progress=step / 4)
            time.sleep(0.15)
        return {"square": i * i, "pid": os.getpid()}
"""


@pytest.mark.postgres
@pytest.mark.slow
def test_three_workers_drain_a_sweep_and_a_killed_workers_experiment_is_rerun(
    live_server: LiveServerFactory, pg_url: str, tmp_path: Path
) -> None:
    server = live_server(pg_url, env={"EXPERIMENT_SWEEP_INTERVAL": "0.5"})
    (tmp_path / "square_app.py").write_text(textwrap.dedent(APP))
    workers: dict[str, subprocess.Popen[bytes]] = {}
    with ExperimentClient(server.url) as client:
        campaign = client.create_campaign(
            {
                "name": "squares",
                "design": {"experiment_name": "square"},
                "sweep": {"grid": {"i": list(range(20))}},
            }
        )
        cid = campaign.campaign_id
        assert len(campaign.experiment_ids or []) == 20
        try:
            for name in ("w1", "w2", "w3"):
                workers[name] = start_worker(
                    server.url,
                    "square_app:Square",
                    tmp_path,
                    name,
                    tmp_path / f"{name}.log",
                    lease=2,
                )
            # Kill w1 as soon as it holds an experiment (mid-run: each takes ~0.6 s).
            victim_exp = None
            deadline = time.monotonic() + 30
            while victim_exp is None and time.monotonic() < deadline:
                running = client.get_queue(cid)["running"]
                victim_exp = next((e["_id"] for e in running if e["worker_id"] == "w1"), None)
                time.sleep(0.05)
            assert victim_exp is not None, (tmp_path / "w1.log").read_text()
            os.kill(workers["w1"].pid, signal.SIGKILL)
            workers["w1"].wait()
            deadline = time.monotonic() + 60
            while client.get_campaign(cid).status.value != "completed":
                assert time.monotonic() < deadline, client.campaign_progress(cid)
                time.sleep(0.2)
        finally:
            for proc in workers.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in workers.values():
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()

        events = client.get_events(campaign_id=cid, limit=10_000)
        claims = [e for e in events if e.type.value == "claimed"]
        per_experiment = Counter(e.experiment_id for e in claims)
        assert set(per_experiment) == set(campaign.experiment_ids or [])
        assert {k: v for k, v in per_experiment.items() if v != 1} == {victim_exp: 2}
        # the retry in the log: claimed by w1, lease expired, claimed by another worker
        story = [
            (e.type.value, e.data.get("worker_id"), e.to_status)
            for e in events
            if e.experiment_id == victim_exp and e.type.value in ("claimed", "lease_expired")
        ]
        assert story[0] == ("claimed", "w1", "in_progress")
        assert story[1] == ("lease_expired", "w1", "queued")
        assert story[2][0] == "claimed" and story[2][1] in ("w2", "w3")
        # no experiment was ever held by two workers at once: a claim follows only a queued state
        for exp_id in per_experiment:
            statuses = [e.to_status for e in events if e.experiment_id == exp_id and e.to_status]
            assert statuses.count("completed") == 1, (exp_id, statuses)
        # results recorded for all 20, by the workers that survived (or w1 before it died)
        table = client.campaign_results(cid)
        squares = sorted(row["results"]["square"] for row in table["rows"])
        assert squares == sorted(i * i for i in range(20))
        victim_row = next(r for r in table["rows"] if r["experiment_id"] == victim_exp)
        assert victim_row["attempts"] == 2 and victim_row["worker_id"] in ("w2", "w3")
        report = client.campaign_report(cid)
        assert report["counts"]["completed"] == 20 and report["counts"]["total"] == 20
        assert report["finished"] == 20 and report["success_rate"] == 1.0
        assert report["retried"] == 1
        assert report["campaign"]["status"] == "completed"
        md = client.campaign_report(cid, "md")
        assert "| completed | 20 |" in md and "Retried after a lost worker: 1" in md
