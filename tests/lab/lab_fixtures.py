"""The real MADSci 0.8.1 lab for the tests: Workcell, Location, Data, Event and Resource managers
and simulated instruments, each in its own process on a free loopback port.

They run from a venv of their own (built once under a lock in the test cache, keyed by its
requirements, like the official client's venv), with MADSci's in-memory backends: no MongoDB.
``madsci_lab.py`` beside this file is what each process runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from labledger_fixtures import cached_venv_python, free_port

LAB_REQUIREMENTS = (
    "madsci-workcell-manager==0.8.1",
    "madsci-location-manager==0.8.1",
    "madsci-data-manager==0.8.1",
    "madsci-event-manager==0.8.1",
    "madsci-resource-manager==0.8.1",
    "madsci-node-module==0.8.1",
    "madsci-client==0.8.1",
    "madsci-common==0.8.1",
    "madsci-experiment-application==0.8.1",
    "pydantic<2.14",
)
LAUNCHER = Path(__file__).with_name("madsci_lab.py")
MANAGERS = ("event", "data", "resource", "location", "workcell")
#: a manager starts in 1.6-3.5 s alone; five at once on a loaded 2-core machine take longer
START_TIMEOUT = 120.0


def lab_venv_python() -> Path:
    """The python of the MADSci managers' venv (built once, cached)."""
    return cached_venv_python(
        "madsci-lab-0.8.1",
        LAB_REQUIREMENTS,
        "import madsci.workcell_manager, madsci.data_manager, madsci.node_module",
    )


@dataclass
class LabProcess:
    """One manager or node of the lab."""

    role: str
    name: str
    port: int
    workdir: Path
    env: dict[str, str]
    python: Path
    health_path: str = "/health"
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "process.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def spawn(self) -> None:
        assert self.process is None or self.process.poll() is not None, f"{self.name} is running"
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.python),
                    str(LAUNCHER),
                    self.role,
                    "--port",
                    str(self.port),
                    "--name",
                    self.name,
                ],
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def ready(self, client: httpx.Client) -> bool:
        if self.process is None:
            return False
        code = self.process.poll()
        if code is not None:
            raise AssertionError(f"{self.name} exited with code {code}:\n{self.log()[-4000:]}")
        try:
            return client.get(f"{self.url}{self.health_path}").status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        proc, self.process = self.process, None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class MadsciLab:
    """The running lab: its processes by name, and the settings that point labledger at it."""

    root: Path
    python: Path
    nodes: tuple[str, ...]
    processes: dict[str, LabProcess] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return self.processes[name].url

    def labledger_env(self) -> dict[str, str]:
        """The EXPERIMENT_* settings of a labledger server in this lab."""
        return {
            "EXPERIMENT_WORKCELL_SERVER_URL": self.url("workcell"),
            "EXPERIMENT_DATA_SERVER_URL": self.url("data"),
            "EXPERIMENT_RESOURCE_SERVER_URL": self.url("resource"),
            "EXPERIMENT_EVENT_SERVER_URL": self.url("event"),
        }

    def client_env(self) -> dict[str, str]:
        """What a MADSci application in this lab reads (the managers' URLs)."""
        return {
            "WORKCELL_SERVER_URL": self.url("workcell") + "/",
            "DATA_SERVER_URL": self.url("data") + "/",
            "RESOURCE_SERVER_URL": self.url("resource") + "/",
            "EVENT_SERVER_URL": self.url("event") + "/",
            "LOCATION_SERVER_URL": self.url("location") + "/",
        }

    def build(self) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith(_MADSCI_PREFIXES)}
        base["MADSCI_DISABLE_SENTRY"] = "1"
        ports = {name: free_port() for name in (*MANAGERS, *self.nodes)}
        for name in self.nodes:
            self.processes[name] = LabProcess(
                "node", name, ports[name], self.root / name, dict(base), self.python, "/status"
            )
        for role in MANAGERS:
            prefix = role.upper()
            env = dict(base)
            env[f"{prefix}_SERVER_URL"] = f"http://127.0.0.1:{ports[role]}/"
            env[f"{prefix}_ENABLE_REGISTRY_RESOLUTION"] = "false"
            if role == "workcell":
                env["LOCATION_SERVER_URL"] = f"http://127.0.0.1:{ports['location']}/"
                env["DATA_SERVER_URL"] = f"http://127.0.0.1:{ports['data']}/"
                env["RESOURCE_SERVER_URL"] = f"http://127.0.0.1:{ports['resource']}/"
                # what the workcell logs about workflows (with their ids) goes to the Event Manager
                env["EVENT_SERVER_URL"] = f"http://127.0.0.1:{ports['event']}/"
                env["WORKCELL_NODES"] = json.dumps(
                    {name: f"http://127.0.0.1:{ports[name]}/" for name in self.nodes}
                )
                env["WORKCELL_SCHEDULER_UPDATE_INTERVAL"] = "0.5"
                env["WORKCELL_NODE_UPDATE_INTERVAL"] = "0.5"
            self.processes[role] = LabProcess(
                role, role, ports[role], self.root / role, env, self.python
            )

    def start(self, names: tuple[str, ...] | None = None, timeout: float = START_TIMEOUT) -> None:
        """Start the named processes (all: nodes first, the workcell last) and wait for them."""
        order = names or (*self.nodes, *MANAGERS)
        # the workcell marks a node it cannot reach "disconnected" for ~30 s: nodes go first
        first = [n for n in order if n != "workcell"]
        for name in first:
            self.processes[name].spawn()
        self._wait(first, timeout)
        if "workcell" in order:
            self.processes["workcell"].spawn()
            self._wait(["workcell"], timeout)
            self._wait_nodes_reachable(timeout)

    def _wait(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(names)
        with httpx.Client(timeout=2.0) as client:
            while pending and time.monotonic() < deadline:
                pending = [n for n in pending if not self.processes[n].ready(client)]
                if pending:
                    time.sleep(0.2)
        if pending:
            logs = "\n".join(f"--- {n}\n{self.processes[n].log()[-3000:]}" for n in pending)
            self.stop()
            raise AssertionError(f"MADSci lab not ready after {timeout} s: {pending}\n{logs}")

    def _wait_nodes_reachable(self, timeout: float) -> None:
        """Until the workcell has seen every node ready (``GET /nodes``)."""
        deadline = time.monotonic() + timeout
        last: object = None
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    last = client.get(f"{self.url('workcell')}/nodes").json()
                    if isinstance(last, dict) and all(
                        isinstance(last.get(name), dict)
                        and isinstance(last[name].get("status"), dict)
                        and last[name]["status"].get("ready")
                        for name in self.nodes
                    ):
                        return
                time.sleep(0.2)
        raise AssertionError(f"the workcell does not reach its nodes: {str(last)[:2000]}")

    def stop(self, names: tuple[str, ...] | None = None) -> None:
        for name in names or tuple(self.processes):
            self.processes[name].stop()


_MADSCI_PREFIXES = (
    "WORKCELL_",
    "DATA_",
    "EVENT_",
    "RESOURCE_",
    "LOCATION_",
    "LAB_",
    "NODE_",
    "EXPERIMENT_",
)
