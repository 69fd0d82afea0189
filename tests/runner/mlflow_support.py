"""A real MLflow tracking server for the import tests: ``mlflow server`` from MLflow's own venv
on a SQLite backend store in a temp folder, with runs logged into it by MLflow's own client."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from labledger_fixtures import free_port

#: two runs of a sweep (params, a tag, a 300-step history, NaN), and a failed run
WRITE_STORE = """
import math, sys
import mlflow

mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment("lr sweep")
for lr in (0.1, 0.01):
    with mlflow.start_run(run_name=f"lr={lr}"):
        mlflow.log_params({"lr": lr, "optimizer": "adam", "layers": 3})
        mlflow.set_tag("team", "vision")
        for step in range(300):
            mlflow.log_metric("train/loss", lr / (step + 1), step=step)
        mlflow.log_metric("accuracy", 0.9 if lr == 0.1 else 0.8)
        mlflow.log_metric("diverged", math.nan)
with mlflow.start_run(run_name="crashed") as run:
    mlflow.log_param("lr", 1.0)
mlflow.MlflowClient().set_terminated(run.info.run_id, "FAILED")
"""

#: how long a loaded machine may take to start MLflow (it imports for seconds)
START_TIMEOUT = 240.0


def mlflow_env(home: Path) -> dict[str, str]:
    """A clean environment for MLflow's processes: nothing of ours, no telemetry."""
    return {
        "MLFLOW_ALLOW_FILE_STORE": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
    }


def write_store(python: Path, folder: Path, uri: str) -> None:
    """Run :data:`WRITE_STORE` with MLflow's client against ``uri`` (a store or a server)."""
    script = folder / "write_store.py"
    script.write_text(textwrap.dedent(WRITE_STORE))
    subprocess.run(
        [str(python), str(script), uri],
        check=True,
        capture_output=True,
        text=True,
        cwd=folder,
        env=mlflow_env(folder),
        timeout=600,
    )


@dataclass
class MlflowServer:
    url: str
    #: the server's SQLite backend store
    database: Path


@contextmanager
def mlflow_server(python: Path, folder: Path) -> Iterator[MlflowServer]:
    """``mlflow server`` on a free loopback port until the block ends; waits for ``/health``."""
    database = folder / "mlflow.db"
    port = free_port()
    log_path = folder / "mlflow-server.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                str(python),
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                f"sqlite:///{database}",
                "--default-artifact-root",
                str(folder / "artifacts"),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            cwd=folder,
            env=mlflow_env(folder),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # it starts uvicorn and a job runner as children: the group is stopped as one
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=5.0) as client:
            while True:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"mlflow server did not start:\n{log_path.read_text(errors='replace')}"
                    )
                try:
                    if client.get(f"{url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        yield MlflowServer(url, database)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
