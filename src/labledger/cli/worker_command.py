"""Run a shell command as the body of a claimed experiment (``labledger worker --command``).

The command gets the experiment through its environment:

``LABLEDGER_EXPERIMENT_ID``, ``LABLEDGER_WORKER_ID``, ``EXPERIMENT_SERVER_URL``
    who it is and where the server is
``LABLEDGER_PARAMETERS``
    the parameters as a JSON object; also one ``LABLEDGER_PARAM_<NAME>`` per parameter
``LABLEDGER_RESULTS``
    a path: a JSON object written there is recorded as the experiment's results

Exit status 0 completes the experiment; anything else fails it with the end of stderr. A pause
stops the process group (SIGSTOP) until the experiment continues (SIGCONT); a cancel or a lost
lease terminates it (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labledger.client.worker import Control, ExperimentStopped
from labledger.core.lifecycle import TERMINAL, ExperimentStatus
from labledger.core.models import Experiment

__all__ = ["CommandFailed", "CommandRunner"]

S = ExperimentStatus
STDERR_TAIL = 20_000


class CommandFailed(RuntimeError):
    """The command exited with a non-zero status (its stderr's end is the message)."""


def _env_name(name: str) -> str:
    return "LABLEDGER_PARAM_" + re.sub(r"[^A-Z0-9_]", "_", name.upper())


def _env_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class CommandRunner:
    """Callable for :class:`labledger.client.worker.Worker`: runs ``command`` per experiment."""

    def __init__(
        self, command: str, *, server_url: str, grace: float = 5.0, poll: float = 0.2
    ) -> None:
        self.command = command
        self.server_url = server_url
        self.grace = grace
        self.poll = poll

    def __call__(self, experiment: Experiment, control: Control) -> Mapping[str, Any] | None:
        with tempfile.TemporaryDirectory(prefix="labledger-worker-") as tmp:
            results = Path(tmp) / "results.json"
            stderr_path = Path(tmp) / "stderr"
            env = dict(os.environ)
            env.update(
                {
                    "LABLEDGER_EXPERIMENT_ID": experiment.experiment_id,
                    "LABLEDGER_WORKER_ID": control.worker_id or "",
                    "EXPERIMENT_SERVER_URL": self.server_url,
                    "LABLEDGER_PARAMETERS": json.dumps(experiment.parameters),
                    "LABLEDGER_RESULTS": str(results),
                }
            )
            for name, value in experiment.parameters.items():
                env[_env_name(name)] = _env_value(value)
            with stderr_path.open("wb") as err:
                proc = subprocess.Popen(
                    self.command, shell=True, env=env, stderr=err, start_new_session=True
                )
                try:
                    code = self._supervise(proc, control)
                finally:
                    if proc.poll() is None:
                        self._terminate(proc)
            if code != 0:
                tail = stderr_path.read_bytes()[-STDERR_TAIL:].decode("utf-8", "replace")
                raise CommandFailed(f"command exited with status {code}: {tail.strip()}")
            if results.exists():
                loaded = json.loads(results.read_text(encoding="utf-8") or "{}")
                if not isinstance(loaded, dict):
                    raise CommandFailed(
                        f"LABLEDGER_RESULTS must hold a JSON object, got {type(loaded).__name__}"
                    )
                return loaded
            return None

    def _supervise(self, proc: subprocess.Popen[bytes], control: Control) -> int:
        stopped = False
        while (code := proc.poll()) is None:
            status = control.status()
            if control.lost or status in TERMINAL or status is S.UNKNOWN:
                self._terminate(proc)
                reason = "the lease was lost" if control.lost else f"it is {status.value}"
                raise ExperimentStopped(control.experiment_id, status.value, reason)
            if status is S.PAUSED and not stopped:
                self._signal(proc, signal.SIGSTOP)
                stopped = True
            elif status is not S.PAUSED and stopped:
                self._signal(proc, signal.SIGCONT)
                stopped = False
            time.sleep(self.poll)
        return code

    @staticmethod
    def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)

    def _terminate(self, proc: subprocess.Popen[bytes]) -> None:
        self._signal(proc, signal.SIGCONT)
        self._signal(proc, signal.SIGTERM)
        try:
            proc.wait(self.grace)
        except subprocess.TimeoutExpired:
            self._signal(proc, signal.SIGKILL)
            proc.wait()
