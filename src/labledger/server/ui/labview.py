"""The lab sections of the experiment and campaign pages, built from a read lab record."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import anyio.from_thread

from labledger.core.labrecord import LabSection, datapoint_plot_values
from labledger.server.labgateway import LabGateway
from labledger.server.routes.lab_records import read_record
from labledger.server.ui import charts

__all__ = ["lab_context", "read_record_from_thread"]

#: at most this many events of the Event Manager on a page (the JSON route has them all)
PAGE_EVENTS = 200


def read_record_from_thread(
    gateway: LabGateway, experiment_ids: Sequence[str]
) -> dict[str, LabSection] | None:
    """The lab record, read from a route running in a worker thread; None without a lab."""
    if not gateway.any_configured:
        return None
    return anyio.from_thread.run(read_record, gateway, list(experiment_ids))


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _step_rows(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    """Each step with its status and a bar placed on the workflow's time span (percent)."""
    steps = [s for s in workflow.get("steps") or [] if isinstance(s, dict)]
    times = [(_when(s.get("start_time")), _when(s.get("end_time"))) for s in steps]
    starts = [t for t, _ in times if t is not None]
    ends = [stamp for t, e in times if (stamp := e or t) is not None]
    origin = min(starts) if starts else None
    span = (max(ends) - origin).total_seconds() if origin and ends else 0.0
    rows = []
    for step, (start, end) in zip(steps, times, strict=True):
        left = width = 0.0
        if origin is not None and start is not None and span > 0:
            left = (start - origin).total_seconds() / span * 100
            width = max(((end or start) - start).total_seconds() / span * 100, 1.0)
        seconds = (end - start).total_seconds() if start and end else None
        rows.append(
            {
                "name": step.get("name"),
                "action": step.get("action"),
                "node": step.get("node"),
                "status": step.get("status") or "not_started",
                "start": step.get("start_time"),
                "end": step.get("end_time"),
                "seconds": seconds,
                "left": round(left, 2),
                "width": round(min(width, 100 - left), 2),
            }
        )
    return rows


def _status_word(workflow: dict[str, Any]) -> str:
    status = workflow.get("status") or {}
    for word in ("cancelled", "failed", "completed", "paused", "running", "queued"):
        if isinstance(status, dict) and status.get(word):
            return word
    return "submitted"


def _point_rows(experiment_id: str | None, points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for point in points:
        pid = str(point.get("_id") or "")
        ownership = point.get("ownership_info") or {}
        is_file = point.get("data_type") == "file"
        owner = experiment_id or ownership.get("experiment_id")
        rows.append(
            {
                "id": pid,
                "label": point.get("label"),
                "type": point.get("data_type"),
                "value": point.get("value"),
                "file": str(point.get("path") or "").rsplit("/", 1)[-1] if is_file else None,
                "href": f"/experiment/{owner}/datapoints/{pid}/value"
                if is_file and owner
                else None,
                "workflow_id": ownership.get("workflow_id"),
                "at": point.get("data_timestamp"),
            }
        )
    return rows


def _point_chart(points: list[dict[str, Any]]) -> str | None:
    """The numeric values of the JSON data points, as bars (in the order they were made)."""
    bars: list[charts.Bar] = []
    for number, point in enumerate(points, 1):
        for name, value in datapoint_plot_values(point).items():
            bars.append(charts.Bar(f"{number}. {name}", value))
    if not bars:
        return None
    return charts.bar_chart("Numeric data points", bars[:60], x_label="data point", y_label="value")


def lab_context(
    record: dict[str, LabSection] | None, experiment_id: str | None
) -> dict[str, Any] | None:
    """What ``_lab.html`` shows; None when no lab is configured."""
    if record is None:
        return None
    workflows = record["workflows"]
    points = record["datapoints"]
    return {
        "sections": record,
        "workflows": [
            {
                "id": w.get("workflow_id"),
                "name": w.get("name") or w.get("label"),
                "status": _status_word(w),
                "submitted": w.get("submitted_time"),
                "experiment_id": (w.get("ownership_info") or {}).get("experiment_id"),
                "steps": _step_rows(w),
            }
            for w in workflows.items
        ],
        "datapoints": _point_rows(experiment_id, points.items),
        "datapoint_chart": _point_chart(points.items),
        "resources": record["resources"].items,
        "events": record["events"].items[-PAGE_EVENTS:],
    }
