"""MADSci 0.8.1's own ``ExperimentScript`` against ``labledger serve``: cancelled from outside,
it raises MADSci's ``ExperimentCancelledError`` and the record stays cancelled; in a campaign
that is paused and resumed, it goes on running and completes."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from labledger_fixtures import LiveServerFactory, server_env

pytestmark = pytest.mark.madsci

SCRIPT = Path(__file__).with_name("madsci_experiment_script.py")
WAIT_SECONDS = 60.0


class OfficialScript:
    """The script running in the MADSci venv, as a subprocess."""

    def __init__(self, python: Path, url: str, workdir: Path, *extra: str) -> None:
        self.out = workdir / "report.json"
        self.gate = workdir / "gate"
        env = {
            k: v
            for k, v in server_env().items()
            if not k.startswith(("MADSCI_", "EXPERIMENT_CLIENT_", "VIRTUAL_ENV", "PYTHON"))
        }
        self.proc = subprocess.Popen(
            [str(python), str(SCRIPT), url, "--out", str(self.out), *extra],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def experiment_id(self) -> str:
        id_file = self.out.with_suffix(".id")
        deadline = time.monotonic() + WAIT_SECONDS
        while not id_file.exists():
            assert self.proc.poll() is None, self.proc.communicate()[0]
            assert time.monotonic() < deadline, "the script never started its experiment"
            time.sleep(0.05)
        return id_file.read_text()

    def report(self) -> dict[str, Any]:
        output, _ = self.proc.communicate(timeout=WAIT_SECONDS)
        assert self.proc.returncode == 0, output
        data: dict[str, Any] = json.loads(self.out.read_text())
        return data

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def scripts() -> Iterator[list[OfficialScript]]:
    started: list[OfficialScript] = []
    yield started
    for script in started:
        script.kill()


def test_a_cancelled_run_raises_madscis_cancellation_and_stays_cancelled(
    live_server: LiveServerFactory,
    db_url: str,
    madsci_python: Path,
    tmp_path: Path,
    scripts: list[OfficialScript],
) -> None:
    server = live_server(db_url)
    script = OfficialScript(madsci_python, server.url, tmp_path)
    scripts.append(script)
    exp_id = script.experiment_id()
    with httpx.Client(base_url=server.url) as http:
        assert http.post(f"experiment/{exp_id}/cancel").status_code == 200
        report = script.report()
        assert report.get("raised") == "ExperimentCancelledError", report
        assert report["module"].startswith("madsci."), report
        record = http.get(f"experiment/{exp_id}").json()
        assert record["lifecycle_status"] == "cancelled"
        assert report["final_status"] == "cancelled"
        changes = [
            (e["from_status"], e["to_status"])
            for e in http.get("events", params={"experiment_id": exp_id}).json()
            if e["from_status"] != e["to_status"]
        ]
        assert changes[-1] == ("in_progress", "cancelled")


def test_a_run_in_a_paused_and_resumed_campaign_goes_on_and_completes(
    live_server: LiveServerFactory,
    db_url: str,
    madsci_python: Path,
    tmp_path: Path,
    scripts: list[OfficialScript],
) -> None:
    server = live_server(db_url)
    with httpx.Client(base_url=server.url) as http:
        campaign = http.post("campaign", json={"campaign_name": "scripted"}).json()
        campaign_id = campaign["campaign_id"]
        script = OfficialScript(
            madsci_python,
            server.url,
            tmp_path,
            "--campaign",
            campaign_id,
            "--gate",
            str(tmp_path / "gate"),
        )
        scripts.append(script)
        exp_id = script.experiment_id()
        assert http.get(f"experiment/{exp_id}").json()["campaign_id"] == campaign_id
        assert http.post(f"campaign/{campaign_id}/pause").status_code == 200
        assert http.get(f"experiment/{exp_id}").json()["lifecycle_status"] == "paused"
        assert http.post(f"campaign/{campaign_id}/resume").status_code == 200
        # back to where the pause found it: running, not queued for a worker to run again
        assert http.get(f"experiment/{exp_id}").json()["lifecycle_status"] == "in_progress"
        assert http.post("queue/claim", json={"worker_id": "w"}).status_code == 204
        script.gate.touch()
        report = script.report()
        assert "raised" not in report, report
        assert report["final_status"] == "completed"
        assert http.get(f"experiment/{exp_id}").json()["lifecycle_status"] == "completed"
