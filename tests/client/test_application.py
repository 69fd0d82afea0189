"""ExperimentApplication and `labledger worker --command` against a real `labledger serve`."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from labledger.client import ExperimentClient
from labledger.client.application import ExperimentApplication
from labledger.errors import IllegalTransition, InvalidInput, ServerUnreachable
from labledger_fixtures import LiveServerFactory, serve_command


class Titration(ExperimentApplication):
    experiment_design = {"experiment_name": "titration", "parameters": {"volume_ml": 10}}

    def run_experiment(self, volume_ml: int, ph: float = 7.0, fail: bool = False) -> Any:
        self.checkpoint("mixed", {"step": 1}, progress=0.5)
        if fail:
            raise ValueError(f"pH {ph} out of range")
        self.use_resource("sample-7", quantity=volume_ml, unit="ml")
        return {"yield": volume_ml * 0.1, "ph": ph}


class Slow(ExperimentApplication):
    experiment_design = {"experiment_name": "slow"}
    steps_done = 0

    def run_experiment(self, **_: Any) -> None:
        for _step in range(200):
            self.checkpoint()
            Slow.steps_done += 1
            time.sleep(0.05)


def test_start_records_results_and_completes(live_server: LiveServerFactory) -> None:
    server = live_server()
    app = Titration(server.url, poll_interval=0.05)
    done = app.start("run 1", ph=6.5)
    assert done.status.value == "completed" and done.parameters == {"volume_ml": 10, "ph": 6.5}
    with ExperimentClient(server.url) as client:
        results = {r.name: r.value for r in client.get_results(done.experiment_id)}
        assert results == {"yield": 1.0, "ph": 6.5}
        assert client.last_milestone(done.experiment_id).data == {"step": 1}  # type: ignore[union-attr]
        assert client.experiments_using("sample-7") == [done.experiment_id]
    app.close()


def test_an_exception_is_recorded_as_failed_with_its_traceback(
    live_server: LiveServerFactory,
) -> None:
    server = live_server()
    app = Titration(server.url, poll_interval=0.05)
    with pytest.raises(ValueError, match="out of range"):
        app.start(ph=13, fail=True)
    with ExperimentClient(server.url) as client:
        exp = client.get_experiments(1)[0]
        assert exp.status.value == "failed"  # MADSci 0.8.1 would say completed
        error = exp.metadata["error"]
        assert error["type"] == "ValueError" and "pH 13 out of range" in error["message"]
        assert "run_experiment" in error["traceback"]
        last = client.get_experiment_events(exp.experiment_id)[-1]
        assert last.to_status == "failed" and last.data["error"]["type"] == "ValueError"
    app.close()


def test_a_started_run_rides_out_a_server_restart(
    live_server: LiveServerFactory, tmp_path: Path
) -> None:
    """The server goes away in the middle of a run and comes back: nothing fails, nothing twice."""
    server = live_server()
    restarted = threading.Event()

    def restart() -> None:
        server.start()
        restarted.set()

    class Interrupted(ExperimentApplication):
        experiment_design = {"experiment_name": "interrupted"}

        def run_experiment(self, **_: Any) -> dict[str, int]:
            self.checkpoint("before", {"step": 0}, progress=0.3)
            server.stop()
            # Back while the run is already retrying its next records.
            threading.Timer(2.0, restart).start()
            self.checkpoint("after", {"step": 1}, progress=0.6)
            out = tmp_path / "out.txt"
            out.write_text("done\n")
            self.attach("output", out)
            return {"answer": 42}

    app = Interrupted(server.url, poll_interval=0.05, patience=60)
    done = app.start("through a restart")
    app.close()
    assert restarted.is_set()
    assert done.status.value == "completed"
    with ExperimentClient(server.url) as client:
        assert [m.name for m in client.get_milestones(done.experiment_id)] == ["before", "after"]
        results = {r.name: r for r in client.get_results(done.experiment_id)}
        assert results["answer"].value == 42 and results["output"].size == 5
        outcomes = [
            e.to_status
            for e in client.get_experiment_events(done.experiment_id)
            if e.to_status in {"completed", "failed"}
        ]
        assert outcomes == ["completed"]


def test_a_run_the_server_stays_away_from_is_not_recorded_failed(
    live_server: LiveServerFactory,
) -> None:
    server = live_server()

    class Abandoned(ExperimentApplication):
        def run_experiment(self, **_: Any) -> None:
            server.stop()
            self.checkpoint("never recorded")

    app = Abandoned(server.url, poll_interval=0.05, patience=0.5)
    with pytest.raises(ServerUnreachable, match=server.url.rstrip("/")):
        app.start("abandoned")
    app.close()
    server.start()
    with ExperimentClient(server.url) as client:
        (exp,) = client.get_experiments(5)
        assert exp.status.value == "in_progress"  # as it was left: not failed by the outage


def test_checkpoint_waits_while_paused_and_stops_on_cancel(live_server: LiveServerFactory) -> None:
    server = live_server()
    app = Slow(server.url, poll_interval=0.05)
    outcome: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: outcome.update(exp=app.start()), daemon=True)
    runner.start()
    with ExperimentClient(server.url) as client:
        deadline = time.monotonic() + 10
        while not client.get_experiments(1) or Slow.steps_done < 3:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        exp_id = client.get_experiments(1)[0].experiment_id
        client.pause_experiment(exp_id)
        time.sleep(0.3)
        frozen = Slow.steps_done
        time.sleep(0.4)
        assert Slow.steps_done <= frozen + 1  # waiting at its checkpoint
        client.continue_experiment(exp_id)
        deadline = time.monotonic() + 5
        while Slow.steps_done <= frozen + 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        client.cancel_experiment(exp_id)
        runner.join(10)
        assert not runner.is_alive()
    assert outcome["exp"].status.value == "cancelled"
    assert Slow.steps_done < 200
    app.close()


def test_checkpoint_outside_a_run_says_what_to_do() -> None:
    app = Titration("http://127.0.0.1:9", poll_interval=0.05)
    with pytest.raises(InvalidInput, match="inside run_experiment"):
        app.checkpoint()
    app.close()


def test_worker_command_gets_parameters_and_its_failures_keep_stderr(
    live_server: LiveServerFactory, tmp_path: Path
) -> None:
    server = live_server()
    script = tmp_path / "job.py"
    script.write_text(
        "import json, os, sys\n"
        "n = int(os.environ['LABLEDGER_PARAM_N'])\n"
        "params = json.loads(os.environ['LABLEDGER_PARAMETERS'])\n"
        "if n == 2:\n"
        "    sys.exit('cannot do two')\n"
        "json.dump({'double': 2 * params['n']}, open(os.environ['LABLEDGER_RESULTS'], 'w'))\n"
    )
    with ExperimentClient(server.url) as client:
        campaign = client.create_campaign(
            {
                "name": "cmd",
                "design": {"experiment_name": "job"},
                "sweep": {"grid": {"n": [1, 2, 3]}},
            }
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_")}
        proc = subprocess.run(
            [
                *serve_command(),
                "worker",
                "--command",
                f"{sys.executable} {script}",
                "--server-url",
                server.url,
                "--worker-id",
                "cmd-1",
                "--exit-when-empty",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        rows = {
            r["parameters"]["n"]: r for r in client.campaign_results(campaign.campaign_id)["rows"]
        }
        assert rows[1]["results"] == {"double": 2} and rows[3]["results"] == {"double": 6}
        assert rows[2]["status"] == "failed"
        failed = client.get_experiment(rows[2]["experiment_id"])
        assert "cannot do two" in failed.metadata["error"]["message"]
        assert client.get_campaign(campaign.campaign_id).status.value == "completed"


def test_worker_refuses_bad_arguments_with_a_hint(tmp_path: Path) -> None:
    both = subprocess.run(
        [*serve_command(), "worker"], capture_output=True, text=True, timeout=30, check=False
    )
    assert both.returncode == 2 and "MODULE:CLASS or --command" in both.stderr
    bad = subprocess.run(
        [*serve_command(), "worker", "nomodule_xyz:App"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=tmp_path,
    )
    assert bad.returncode == 2 and "cannot import 'nomodule_xyz'" in bad.stderr
    from labledger_fixtures import free_port

    nowhere = f"http://127.0.0.1:{free_port()}"
    down = subprocess.run(
        [*serve_command(), "worker", "-c", "true", "--server-url", nowhere, "--exit-when-empty"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert down.returncode == 1 and f"Cannot reach the labledger server at {nowhere}" in down.stderr
    assert "Traceback" not in down.stderr


class Resumable(ExperimentApplication):
    experiment_design = {"experiment_name": "resumable"}
    crash_at: int | None = 2
    steps: list[int] = []

    def run_experiment(self, **_: Any) -> dict[str, int]:
        start = self.resume_point()
        first = start.data["step"] + 1 if start else 0
        for step in range(first, 4):
            if step == self.crash_at:
                raise RuntimeError("power cut")
            Resumable.steps.append(step)
            self.checkpoint("step", {"step": step}, progress=(step + 1) / 4)
        return {"steps": len(Resumable.steps)}


def test_resume_continues_from_the_last_milestone(live_server: LiveServerFactory) -> None:
    server = live_server()
    app = Resumable(server.url, poll_interval=0.05)
    with pytest.raises(RuntimeError):
        app.start()
    with ExperimentClient(server.url) as client:
        exp_id = client.get_experiments(1)[0].experiment_id
        assert client.get_experiment(exp_id).status.value == "failed"
        # a failed run is finished: resuming it is refused, naming both states
        with pytest.raises(IllegalTransition, match="'failed'"):
            app.resume(exp_id)
        paused = client.start_experiment({"experiment_name": "resumable"})
        client.add_milestone(paused.experiment_id, "step", {"step": 1})
        client.pause_experiment(paused.experiment_id)
    Resumable.steps.clear()
    Resumable.crash_at = None
    done = app.resume(paused.experiment_id)
    assert done.status.value == "completed" and Resumable.steps == [2, 3]
    app.close()


class Steps(ExperimentApplication):
    experiment_design = {"experiment_name": "steps"}
    done = 0

    def run_experiment(self, **_: Any) -> None:
        for _step in range(400):
            self.checkpoint()
            Steps.done += 1
            time.sleep(0.03)


def test_a_worker_waits_through_a_campaign_pause_and_stops_on_cancel(
    live_server: LiveServerFactory,
) -> None:
    server = live_server()
    app = Steps(server.url, poll_interval=0.05)
    with ExperimentClient(server.url) as client:
        campaign = client.create_campaign(
            {"name": "held", "design": {"experiment_name": "steps"}, "sweep": {"list": [{}]}}
        )
        stats: dict[str, Any] = {}
        worker = threading.Thread(
            target=lambda: stats.update(
                s=app.run_worker(worker_id="bench-1", lease_seconds=1, max_experiments=1)
            ),
            daemon=True,
        )
        worker.start()

        def wait_until(check: Any) -> None:
            deadline = time.monotonic() + 10
            while not check():
                assert time.monotonic() < deadline
                time.sleep(0.02)

        wait_until(lambda: Steps.done >= 3)
        client.pause_campaign(campaign.campaign_id)
        time.sleep(0.3)
        frozen = Steps.done
        time.sleep(1.5)  # longer than the lease: the heartbeat keeps it while paused
        assert Steps.done <= frozen + 1
        exp_id = (campaign.experiment_ids or [])[0]
        held = client.get_experiment(exp_id)
        assert (held.status.value, held.worker_id) == ("paused", "bench-1")
        client.resume_campaign(campaign.campaign_id)
        wait_until(lambda: Steps.done > frozen + 3)
        client.cancel_campaign(campaign.campaign_id)
        worker.join(10)
        assert not worker.is_alive()
        assert stats["s"].stopped == 1 and stats["s"].completed == 0
        assert client.get_experiment(exp_id).status.value == "cancelled"
    app.close()


SLOW_APP = """
import time
from labledger.client.application import ExperimentApplication


class Slow(ExperimentApplication):
    def run_experiment(self, **_):
        for _ in range(600):
            self.checkpoint()
            time.sleep(0.05)
"""


def test_ctrl_c_gives_the_experiment_back_to_the_queue(
    live_server: LiveServerFactory, tmp_path: Path
) -> None:
    import signal

    server = live_server()
    (tmp_path / "slow_app.py").write_text(SLOW_APP)
    with ExperimentClient(server.url) as client:
        exp = client.start_experiment({"experiment_name": "slow"}, status="queued")
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_")}
        proc = subprocess.Popen(
            [
                *serve_command(),
                "worker",
                "slow_app:Slow",
                "--server-url",
                server.url,
                "--worker-id",
                "bench-2",
                "--path",
                str(tmp_path),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            # Ctrl-C as soon as the claim is on the server: the worker may still be reading its
            # answer, or not yet in the experiment; either way it gives the experiment back.
            deadline = time.monotonic() + 60
            while client.get_experiment(exp.experiment_id).worker_id != "bench-2":
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 130, err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        back = client.get_experiment(exp.experiment_id)
        assert (back.status.value, back.worker_id) == ("queued", None)
        last = client.get_experiment_events(exp.experiment_id)[-1]
        assert last.data["reason"] == "worker interrupted"


class Gated(ExperimentApplication):
    """Runs between checkpoints until the test lets it finish."""

    experiment_design = {"experiment_name": "gated"}
    release = threading.Event()
    checkpoints = 0

    def run_experiment(self, **_: Any) -> Any:
        while not Gated.release.is_set():
            self.checkpoint()
            Gated.checkpoints += 1
            time.sleep(0.02)
        return {"done": 1}


def test_a_direct_run_in_a_paused_and_resumed_campaign_goes_on_running(
    live_server: LiveServerFactory, db_url: str
) -> None:
    server = live_server(db_url)
    Gated.release.clear()
    Gated.checkpoints = 0
    app = Gated(server.url, poll_interval=0.05)
    outcome: dict[str, Any] = {}
    with ExperimentClient(server.url) as client:
        campaign = client.register_campaign({"campaign_name": "direct runs"})
        runner = threading.Thread(
            target=lambda: outcome.update(exp=app.start(campaign_id=campaign.campaign_id)),
            daemon=True,
        )
        runner.start()
        deadline = time.monotonic() + 20
        while Gated.checkpoints < 2:
            assert time.monotonic() < deadline and runner.is_alive()
            time.sleep(0.02)
        exp_id = client.get_experiments(1)[0].experiment_id
        http = client.http
        assert http.post(f"campaign/{campaign.campaign_id}/pause").status_code == 200
        assert client.get_experiment(exp_id).status.value == "paused"
        assert http.post(f"campaign/{campaign.campaign_id}/resume").status_code == 200
        # back to where the pause found it: running, not queued for a worker to run again
        assert client.get_experiment(exp_id).status.value == "in_progress"
        assert http.post("queue/claim", json={"worker_id": "w"}).status_code == 204
        Gated.release.set()
        runner.join(20)
        assert not runner.is_alive()
        assert outcome["exp"].status.value == "completed"
        assert {r.name: r.value for r in client.get_results(exp_id)} == {"done": 1}
    app.close()


def test_a_worker_run_that_lost_its_lease_cannot_record_or_attach(
    live_server: LiveServerFactory, tmp_path: Path
) -> None:
    from labledger.client.worker import Control
    from labledger.errors import LeaseLost

    server = live_server()
    with ExperimentClient(server.url) as client:
        queued = client.start_experiment({"experiment_name": "q"}, status="queued")
        claimed = client.http.post("queue/claim", json={"worker_id": "B"}).json()
        assert claimed["_id"] == queued.experiment_id
        app = Titration(server.url, poll_interval=0.05)
        # the application as worker A would run it, after B took the experiment over
        app._control = Control(app.client, queued, worker_id="A")
        data = tmp_path / "curve.csv"
        data.write_text("x,y\n")
        with pytest.raises(LeaseLost):
            app.record(yield_=1)
        with pytest.raises(LeaseLost):
            app.attach("curve", data)
        assert client.get_results(queued.experiment_id) == []
        app.close()
