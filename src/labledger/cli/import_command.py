"""``labledger import mlflow``: bring an MLflow tracking store's runs to a labledger server."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from labledger.cli.server_options import server_option, token_option

if TYPE_CHECKING:
    from labledger.client.sync import ExperimentClient
    from labledger.core.models import Experiment
    from labledger.runner.mlflow_store import MlflowRun

__all__ = ["import_group"]

_UNUSABLE = re.compile(r"[^A-Za-z0-9_.\-]")


def experiment_id_for(run: MlflowRun) -> str:
    """The same ULID for the same MLflow run on every import (its start time, then a hash of
    the run id), so importing again updates instead of duplicating."""
    from ulid import ULID

    millis = max(0, run.start_ms or 0).to_bytes(6, "big")
    digest = hashlib.blake2b(f"mlflow:{run.run_id}".encode(), digest_size=10).digest()
    return str(ULID.from_bytes(millis + digest))


def metric_name(name: str) -> str:
    """An MLflow metric key as a series name: ``train/loss`` -> ``train.loss``."""
    cleaned = _UNUSABLE.sub("_", name.replace("/", ".")).lstrip("._-") or "metric"
    return cleaned[:200]


def _param(value: str) -> Any:
    """MLflow keeps params as text; numbers and booleans come back as such, so they query."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return (
        parsed if isinstance(parsed, int | float | bool) and not isinstance(parsed, str) else value
    )


def _when(millis: int | None) -> datetime | None:
    return None if millis is None else datetime.fromtimestamp(millis / 1000, UTC)


def to_experiment(run: MlflowRun) -> Experiment:
    """The labledger experiment of an MLflow run."""
    from labledger.core.models import Experiment
    from labledger.runner.mlflow_store import STATUSES

    started = _when(run.start_ms) or datetime.now(UTC)
    return Experiment.model_validate(
        {
            "_id": experiment_id_for(run),
            "status": STATUSES.get(run.status, "unknown"),
            "experiment_design": {"experiment_name": run.experiment_name},
            "run_name": run.run_name,
            "parameters": {k: _param(v) for k, v in run.params.items()},
            "metadata": {
                "mlflow": {
                    "run_id": run.run_id,
                    "experiment": run.experiment_name,
                    "user": run.user,
                    "tags": run.tags,
                }
            },
            "created_at": started,
            "started_at": started,
            "ended_at": _when(run.end_ms),
        }
    )


def import_run(client: ExperimentClient, run: MlflowRun) -> dict[str, Any]:
    """Import one run (record, then metric histories); safe to repeat."""
    experiment = to_experiment(run)
    stored = client.import_experiment(experiment, [], {})
    points = 0
    for key, history in run.metrics.items():
        name = metric_name(key)
        batch = [
            {
                "name": name,
                "value": value,
                "step": step,
                "timestamp": datetime.fromtimestamp(ms / 1000, UTC).isoformat(),
            }
            for step, ms, value in history
        ]
        if batch:
            client.add_metric_points(stored.experiment_id, batch)
            points += len(batch)
    return {
        "mlflow_run": run.run_id,
        "id": stored.experiment_id,
        "experiment": run.experiment_name,
        "run_name": run.run_name,
        "status": stored.status.value,
        "params": len(run.params),
        "metric_points": points,
        "non_finite_skipped": run.non_finite,
    }


@click.group(name="import")
def import_group() -> None:
    """Bring runs from other trackers to a labledger server.

    \b
    Examples:
      labledger import mlflow ./mlruns --server http://lab-server:8002
    """


@import_group.command(name="mlflow")
@click.argument("source")
@server_option
@token_option
@click.option("--json", "as_json", is_flag=True, help="Print what was imported as JSON.")
def mlflow(source: str, server_url: str | None, token: str | None, as_json: bool) -> None:
    """Import an MLflow tracking store: experiments, runs, params, tags, metric histories.

    SOURCE is a running tracking server (http://host:5000, read over its REST API; credentials
    from MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD), an mlruns folder or a
    SQLite store (sqlite:///mlflow.db). Each run keeps one labledger id, so importing again
    updates instead of duplicating. MLflow is not needed.

    \b
    Examples:
      labledger import mlflow http://mlflow-host:5000 --server http://lab-server:8002
      labledger import mlflow ./mlruns --server http://lab-server:8002
      labledger import mlflow sqlite:///mlflow.db --json
    """
    import httpx

    from labledger.client.sync import ExperimentClient
    from labledger.runner.mlflow_server import read_mlflow_server
    from labledger.runner.mlflow_store import read_mlflow

    over_http = source.startswith(("http://", "https://"))
    imported: list[dict[str, Any]] = []
    client = ExperimentClient(server_url, token=token)
    server = client.url
    try:
        with client:
            for run in read_mlflow_server(source) if over_http else read_mlflow(source):
                imported.append(import_run(client, run))
    except httpx.TransportError as exc:
        raise click.ClickException(
            f"Cannot reach {server}: {exc}. Check --server, or start one with `labledger serve`."
        ) from exc
    if as_json:
        click.echo(json.dumps(imported, indent=2))
        return
    points = sum(r["metric_points"] for r in imported)
    click.echo(
        f"Imported {len(imported)} runs ({points:,} metric points) from {source} to {server}."
    )
    skipped = sum(r["non_finite_skipped"] for r in imported)
    if skipped:
        click.echo(f"Skipped {skipped} NaN or infinite metric values (not storable).", err=True)
