"""Read a running MLflow tracking server over its REST API, for ``labledger import mlflow``.

The same runs as reading its store directly (:mod:`labledger.runner.mlflow_store`): active
experiments (``experiments/search``), their active runs with params and tags (``runs/search``),
and each metric's whole history (``metrics/get-history``), every list read page by page. The
server's credentials come from the variables MLflow's own client reads:
``MLFLOW_TRACKING_TOKEN``, or ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import httpx

from labledger.errors import InvalidInput
from labledger.runner.mlflow_store import MlflowRun

__all__ = ["PAGE_SIZE", "read_mlflow_server"]

#: items asked for per page (MLflow allows up to 1,000 experiments and 50,000 runs a page)
PAGE_SIZE = 1_000
#: points asked for per page of a metric's history
HISTORY_PAGE_SIZE = 25_000

_API = "/api/2.0/mlflow"


def _auth() -> tuple[dict[str, str], httpx.BasicAuth | None]:
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}, None
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if user:
        return {}, httpx.BasicAuth(user, os.environ.get("MLFLOW_TRACKING_PASSWORD", ""))
    return {}, None


class _Api:
    """The few REST calls the import needs, with errors that say what to do."""

    def __init__(self, url: str, transport: httpx.BaseTransport | None) -> None:
        headers, auth = _auth()
        self.url = url
        self.http = httpx.Client(
            base_url=url.rstrip("/") + _API,
            headers=headers,
            auth=auth,
            timeout=httpx.Timeout(60.0, connect=10.0),
            transport=transport,
        )

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            resp = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            raise InvalidInput(
                f"source: cannot reach an MLflow tracking server at {self.url} ({reason}); "
                "start it (mlflow server --port 5000) or check the URL",
                field="source",
            ) from exc
        if resp.status_code in (401, 403):
            raise InvalidInput(
                f"source: the MLflow server at {self.url} refused the import "
                f"({resp.status_code}); set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME "
                "and MLFLOW_TRACKING_PASSWORD",
                field="source",
            )
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code != 200 or not isinstance(body, dict):
            said = body.get("message") if isinstance(body, dict) else None
            raise InvalidInput(
                f"source: {self.url} did not answer {path} as an MLflow tracking server does "
                f"({resp.status_code}{': ' + str(said) if said else ''}); expected the URL of "
                "`mlflow server`, e.g. http://127.0.0.1:5000",
                field="source",
            )
        return body

    def pages(self, method: str, path: str, key: str, query: dict[str, Any]) -> Iterator[Any]:
        """Every item under ``key`` of every page (``page_token`` / ``next_page_token``)."""
        token: str | None = None
        while True:
            asked = dict(query, page_token=token) if token else query
            if method == "GET":
                body = self.call(method, path, params=asked)
            else:
                body = self.call(method, path, json=asked)
            yield from body.get(key, [])
            token = body.get("next_page_token")
            if not token:
                return


def _value(raw: Any) -> float:
    """A metric value as MLflow's JSON carries it: a number, or "NaN" / "Infinity" as text."""
    try:
        return float(raw)
    except (TypeError, ValueError):
        return math.nan


def _run(api: _Api, found: dict[str, Any], experiment_name: str, history: int) -> MlflowRun:
    info, data = found.get("info", {}), found.get("data", {})
    run_id = str(info.get("run_id") or info.get("run_uuid"))
    start, end = info.get("start_time"), info.get("end_time")
    run = MlflowRun(
        run_id=run_id,
        experiment_name=experiment_name,
        run_name=info.get("run_name") or None,
        status=str(info.get("status", "FINISHED")),
        start_ms=int(start) if start is not None else None,
        end_ms=int(end) if end is not None else None,
        user=info.get("user_id") or None,
        params={p["key"]: p.get("value", "") for p in data.get("params", [])},
        tags={t["key"]: t.get("value", "") for t in data.get("tags", [])},
    )
    # runs/search gives each metric's latest value only: the whole history is asked per key
    for key in sorted({m["key"] for m in data.get("metrics", [])}):
        points = []
        query = {"run_id": run_id, "metric_key": key, "max_results": history}
        for point in api.pages("GET", "/metrics/get-history", "metrics", query):
            value = _value(point.get("value"))
            if not math.isfinite(value):
                run.non_finite += 1
                continue
            points.append((int(point.get("step", 0)), int(point.get("timestamp", 0)), value))
        if points:
            run.metrics[key] = points
    return run


def read_mlflow_server(
    url: str,
    *,
    page_size: int = PAGE_SIZE,
    history_page_size: int = HISTORY_PAGE_SIZE,
    transport: httpx.BaseTransport | None = None,
) -> Iterator[MlflowRun]:
    """The active runs of the MLflow tracking server at ``url``, experiment by experiment, each
    in start order. Raises :class:`InvalidInput` naming what to do when the server cannot be
    reached or does not answer as MLflow does."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidInput(
            f"source: expected a tracking server URL like http://127.0.0.1:5000, got {url!r}",
            field="source",
        )
    api = _Api(url, transport)
    try:
        experiments = list(
            api.pages(
                "POST",
                "/experiments/search",
                "experiments",
                {"max_results": page_size, "view_type": "ACTIVE_ONLY"},
            )
        )
        experiments.sort(key=lambda e: (len(str(e["experiment_id"])), str(e["experiment_id"])))
        for experiment in experiments:
            query = {
                "experiment_ids": [experiment["experiment_id"]],
                "max_results": page_size,
                "run_view_type": "ACTIVE_ONLY",
                "order_by": ["attributes.start_time ASC"],
            }
            for found in api.pages("POST", "/runs/search", "runs", query):
                yield _run(api, found, str(experiment.get("name", "")), history_page_size)
    finally:
        api.http.close()
