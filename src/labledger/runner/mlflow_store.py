"""Read an MLflow tracking store without MLflow: its experiments, runs, params, tags and metric
histories, for ``labledger import mlflow``.

Two stores are read directly: the database one (``sqlite:///mlflow.db``, MLflow's default since
3.x) and the file one (an ``mlruns`` folder: ``<experiment>/meta.yaml``,
``<experiment>/<run>/meta.yaml`` and one file per param, tag and metric). A running tracking
server (``http://…``) is read over its REST API by :mod:`labledger.runner.mlflow_server` instead.
Deleted runs and experiments are left out.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml

from labledger.errors import InvalidInput

__all__ = ["MlflowRun", "read_mlflow"]

#: MLflow's RunStatus numbers (file store) and names (database store) -> our statuses
_STATUS_NAMES = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
STATUSES = {
    "RUNNING": "in_progress",
    "SCHEDULED": "queued",
    "FINISHED": "completed",
    "FAILED": "failed",
    "KILLED": "cancelled",
}


@dataclass
class MlflowRun:
    """One MLflow run, as read from its store."""

    run_id: str
    experiment_name: str
    run_name: str | None
    status: str
    start_ms: int | None
    end_ms: int | None
    user: str | None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    #: name -> (step, timestamp in ms, value), in logging order
    metrics: dict[str, list[tuple[int, int, float]]] = field(default_factory=dict)
    #: points MLflow held as NaN or infinite (not importable as metric values)
    non_finite: int = 0


def read_mlflow(source: str) -> Iterator[MlflowRun]:
    """The runs of the store named by ``source``: ``sqlite:///…``, ``file:///…``, a folder of
    the file store or a SQLite file. Raises :class:`InvalidInput` naming what was expected."""
    parsed = urlparse(source)
    if parsed.scheme == "sqlite":
        # sqlite:///relative.db or sqlite:////absolute/path.db, as SQLAlchemy and MLflow read it
        yield from _database(Path(unquote(source.removeprefix("sqlite:///"))))
        return
    if parsed.scheme == "file":
        yield from _folder(Path(unquote(parsed.path)))
        return
    if parsed.scheme in ("http", "https"):
        raise InvalidInput(
            "source: a tracking server is read over HTTP by "
            "labledger.runner.mlflow_server.read_mlflow_server, not from a store",
            field="source",
        )
    if parsed.scheme in ("databricks", "postgresql", "mysql"):
        raise InvalidInput(
            f"source: {parsed.scheme}:// stores cannot be read directly; serve them with "
            "`mlflow server --backend-store-uri …` and import from its http:// URL",
            field="source",
        )
    path = Path(source)
    if path.is_dir():
        yield from _folder(path)
    elif path.is_file():
        yield from _database(path)
    else:
        raise InvalidInput(
            f"source: expected an mlruns folder, a sqlite:///path/to/mlflow.db URI or a "
            f"SQLite file, got {source!r} (it does not exist)",
            field="source",
        )


def _finite(run: MlflowRun, value: float) -> bool:
    if math.isfinite(value):
        return True
    run.non_finite += 1
    return False


def _database(path: Path) -> Iterator[MlflowRun]:
    if not path.is_file():
        raise InvalidInput(f"source: no SQLite file at {path}", field="source")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"experiments", "runs", "params", "tags", "metrics"} <= tables:
            raise InvalidInput(f"source: {path} is not an MLflow tracking database", field="source")
        names = dict(
            conn.execute(
                "SELECT experiment_id, name FROM experiments WHERE lifecycle_stage='active'"
            )
        )
        rows = conn.execute(
            "SELECT run_uuid, name, status, start_time, end_time, user_id, experiment_id "
            "FROM runs WHERE lifecycle_stage = 'active' ORDER BY start_time, run_uuid"
        ).fetchall()
        for run_id, name, status, start, end, user, experiment_id in rows:
            if experiment_id not in names:
                continue
            run = MlflowRun(run_id, names[experiment_id], name, status, start, end, user)
            run.params = dict(
                conn.execute("SELECT key, value FROM params WHERE run_uuid=?", [run_id])
            )
            run.tags = dict(conn.execute("SELECT key, value FROM tags WHERE run_uuid=?", [run_id]))
            for key, value, timestamp, step, is_nan in conn.execute(
                "SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid=? "
                "ORDER BY key, timestamp, step",
                [run_id],
            ):
                if is_nan:
                    run.non_finite += 1
                    continue
                if not _finite(run, float(value)):
                    continue
                run.metrics.setdefault(key, []).append((int(step), int(timestamp), float(value)))
            yield run
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"source: cannot read {path}: {exc}", field="source") from exc
    finally:
        conn.close()


def _meta(path: Path) -> dict[str, object]:
    data = yaml.safe_load(path.read_text()) if path.is_file() else None
    return data if isinstance(data, dict) else {}


def _folder(root: Path) -> Iterator[MlflowRun]:
    if not root.is_dir():
        raise InvalidInput(f"source: no folder at {root}", field="source")
    experiments = sorted(p for p in root.iterdir() if (p / "meta.yaml").is_file())
    if not experiments:
        raise InvalidInput(
            f"source: {root} holds no MLflow experiment (no <id>/meta.yaml)", field="source"
        )
    for folder in experiments:
        meta = _meta(folder / "meta.yaml")
        if meta.get("lifecycle_stage") != "active":
            continue
        experiment_name = str(meta.get("name", folder.name))
        runs = [p for p in folder.iterdir() if (p / "meta.yaml").is_file()]
        for run_dir in sorted(
            runs, key=lambda p: (_meta(p / "meta.yaml").get("start_time") or 0, p.name)
        ):
            yield _folder_run(run_dir, experiment_name)


def _values(folder: Path) -> dict[str, str]:
    """One file per key (nested keys in subfolders, joined with '/')."""
    if not folder.is_dir():
        return {}
    return {
        str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _folder_run(run_dir: Path, experiment_name: str) -> MlflowRun:
    meta = _meta(run_dir / "meta.yaml")
    status = meta.get("status")
    status_name = _STATUS_NAMES.get(status, "FINISHED") if isinstance(status, int) else str(status)
    start, end = meta.get("start_time"), meta.get("end_time")
    run = MlflowRun(
        run_id=str(meta.get("run_id") or run_dir.name),
        experiment_name=experiment_name,
        run_name=str(meta["run_name"]) if meta.get("run_name") else None,
        status=status_name,
        start_ms=int(start) if isinstance(start, int) else None,
        end_ms=int(end) if isinstance(end, int) else None,
        user=str(meta["user_id"]) if meta.get("user_id") else None,
        params=_values(run_dir / "params"),
        tags=_values(run_dir / "tags"),
    )
    metrics_dir = run_dir / "metrics"
    if metrics_dir.is_dir():
        for path in sorted(p for p in metrics_dir.rglob("*") if p.is_file()):
            points = []
            for line in path.read_text().splitlines():
                parts = line.split()
                if len(parts) < 2:
                    continue
                value = float(parts[1])
                if not _finite(run, value):
                    continue
                step = int(parts[2]) if len(parts) > 2 else 0
                points.append((step, int(parts[0]), value))
            run.metrics[str(path.relative_to(metrics_dir))] = points
    return run
