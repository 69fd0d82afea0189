"""``labledger import mlflow`` against stores MLflow itself wrote (MLflow in its own venv) and
against a running ``mlflow server``, into a real ``labledger serve``; importing twice changes
nothing."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from labledger.cli.main import cli
from labledger.client import ExperimentClient
from labledger_fixtures import LiveServerFactory, free_port
from runner.mlflow_support import write_store
from runner.recorder_support import labledger


def _import(source: str, url: str) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["import", "mlflow", source, "--server", url, "--json"])
    assert result.exit_code == 0, result.output
    imported: list[dict[str, Any]] = json.loads(result.output)
    return imported


@pytest.mark.parametrize("store", ["sqlite", "folder", "server"])
def test_import_brings_runs_params_tags_and_histories_and_is_idempotent(
    request: pytest.FixtureRequest,
    mlflow_python: Path,
    live_server: LiveServerFactory,
    tmp_path: Path,
    store: str,
) -> None:
    if store == "server":
        # the session's mlflow server, written by WRITE_STORE through MLflow's client
        source = request.getfixturevalue("mlflow_tracking_server").url
    elif store == "sqlite":
        uri = source = f"sqlite:///{tmp_path}/mlflow.db"
        write_store(mlflow_python, tmp_path, uri)
    else:
        uri, source = f"file://{tmp_path}/mlruns", str(tmp_path / "mlruns")
        write_store(mlflow_python, tmp_path, uri)
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


def test_a_tracking_server_that_cannot_be_reached_or_is_not_mlflow_is_one_line(
    tmp_path: Path, live_server: LiveServerFactory
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    unreachable = labledger(tmp_path, "import", "mlflow", closed, ok=False)
    assert unreachable.returncode == 2
    assert f"cannot reach an MLflow tracking server at {closed}" in unreachable.stderr
    assert "start it (mlflow server --port 5000) or check the URL" in unreachable.stderr
    # a server that answers HTTP, but not MLflow's API: labledger's own
    other = live_server().url
    not_mlflow = labledger(tmp_path, "import", "mlflow", other, ok=False)
    assert not_mlflow.returncode == 2
    assert "did not answer /experiments/search as an MLflow tracking server does" in (
        not_mlflow.stderr
    )
    no_host = labledger(tmp_path, "import", "mlflow", "http://", ok=False)
    assert no_host.returncode == 2 and "expected a tracking server URL like" in no_host.stderr
    for answer in (unreachable, not_mlflow, no_host):
        assert "Traceback" not in answer.stderr and len(answer.stderr.strip().splitlines()) == 1
