"""``labledger import mlflow`` against stores MLflow itself wrote (MLflow in its own venv),
into a real ``labledger serve``; importing twice changes nothing."""

from __future__ import annotations

import json
import math
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from labledger.cli.main import cli
from labledger.client import ExperimentClient
from labledger_fixtures import LiveServerFactory
from runner.recorder_support import labledger

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


def _write_store(python: Path, tmp_path: Path, uri: str) -> None:
    script = tmp_path / "write_store.py"
    script.write_text(textwrap.dedent(WRITE_STORE))
    subprocess.run(
        [str(python), str(script), uri],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"MLFLOW_ALLOW_FILE_STORE": "true", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=600,
    )


def _import(source: str, url: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["import", "mlflow", source, "--server", url, "--json"])
    assert result.exit_code == 0, result.output
    imported: list[dict[str, Any]] = json.loads(result.output)
    return imported


@pytest.mark.parametrize("store", ["sqlite", "folder"])
def test_import_brings_runs_params_tags_and_histories_and_is_idempotent(
    mlflow_python: Path, live_server: LiveServerFactory, tmp_path: Path, store: str
) -> None:
    if store == "sqlite":
        uri = source = f"sqlite:///{tmp_path}/mlflow.db"
    else:
        uri, source = f"file://{tmp_path}/mlruns", str(tmp_path / "mlruns")
    _write_store(mlflow_python, tmp_path, uri)
    server = live_server()
    first = _import(source, server.url)
    assert sorted(r["run_name"] for r in first) == ["crashed", "lr=0.01", "lr=0.1"]
    assert sum(r["non_finite_skipped"] for r in first) == 2  # the NaNs, said out loud
    again = _import(source, server.url)
    assert [r["id"] for r in again] == [r["id"] for r in first]
    with ExperimentClient(server.url) as client:
        experiments = client.get_experiments(number=0)
        assert len(experiments) == 3
        by_name = {e.run_name: e for e in experiments}
        run = by_name["lr=0.1"]
        assert run.experiment_design is not None
        assert run.experiment_design.experiment_name == "lr sweep"
        assert run.parameters == {"lr": 0.1, "optimizer": "adam", "layers": 3}
        assert run.metadata["mlflow"]["tags"]["team"] == "vision"
        assert run.status.value == "completed" and run.ended_at is not None
        assert by_name["crashed"].status.value == "failed"
        series = {s["name"]: s for s in client.list_metrics(run.experiment_id)}
        assert set(series) == {"train.loss", "accuracy"}
        assert series["train.loss"]["count"] == 300
        assert math.isclose(series["train.loss"]["last_value"], 0.1 / 300)
        points = client.get_metric(run.experiment_id, "train.loss", max_points=1000)["points"]
        assert [p["step"] for p in points] == list(range(300))
        # imported runs answer queries like any other
        best = client.http.get(
            "/experiments", params={"where": "metrics.accuracy>0.85", "number": 0}
        ).json()
        assert [e["run_name"] for e in best] == ["lr=0.1"]


def test_a_source_that_is_not_an_mlflow_store_is_one_line(tmp_path: Path) -> None:
    missing = labledger(tmp_path, "import", "mlflow", str(tmp_path / "nowhere"), ok=False)
    assert missing.returncode == 2
    assert "expected an mlruns folder, a sqlite:///path/to/mlflow.db URI" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = labledger(tmp_path, "import", "mlflow", str(tmp_path / "empty"), ok=False)
    assert empty.returncode == 2 and "holds no MLflow experiment" in empty.stderr
    for answer in (missing, empty):
        assert "Traceback" not in answer.stderr and len(answer.stderr.strip().splitlines()) == 1
