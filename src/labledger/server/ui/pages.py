"""The context of each detail page, built from service calls (the JSON twins' data)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from labledger.core.lifecycle import TERMINAL, ExperimentStatus
from labledger.core.models import ExperimentQuery
from labledger.core.service import ExperimentService
from labledger.server.ui import charts
from labledger.server.ui.views import (
    allowed_actions,
    flatten,
    milestones_of,
    numeric,
    plot_points,
    recorder_info,
    status_bars,
    status_spans,
    transitions_table,
)

__all__ = ["campaign_context", "experiment_context", "queue_context"]

#: the most experiments a campaign page loads for its chart and table
CAMPAIGN_LIMIT = 5_000
#: the most rows the queue page shows per section
QUEUE_LIMIT = 500


def _results(service: ExperimentService, experiment_id: str) -> list[Any]:
    """The experiment's results (values and files), when the service records results."""
    lister = getattr(service, "list_results", None)
    if lister is None:
        return []
    results: list[Any] = lister(experiment_id)
    return results


def file_url(experiment_id: str, result: Any) -> str:
    """Where a file result downloads from."""
    return f"/experiment/{experiment_id}/results/{quote(result.name)}/file"


def result_charts(values: list[Any]) -> list[str]:
    """Plots of an experiment's results: numbers as bars, each series of numbers as a line."""
    out: list[str] = []
    scalars = [(r.name, numeric(r.value)) for r in values]
    bars = [charts.Bar(name, value) for name, value in scalars if value is not None]
    if len(bars) > 1:
        out.append(charts.bar_chart("Numeric results", bars, x_label="result", y_label="value"))
    for r in values:
        series = r.value if isinstance(r.value, list) else None
        if series and len(series) > 1 and all(numeric(v) is not None for v in series):
            points = [charts.Point(float(i), float(v)) for i, v in enumerate(series)]
            out.append(
                charts.scatter_chart(
                    f"{r.name} by step", points, x_label="step", y_label=r.name, line=True
                )
            )
    return out


def experiment_context(service: ExperimentService, experiment_id: str) -> dict[str, Any]:
    """Everything the experiment page shows."""
    exp = service.get_experiment(experiment_id)
    events = service.list_events(experiment_id=exp.experiment_id, limit=10_000)
    now = service.clock()
    spans = status_spans(events)
    results = _results(service, exp.experiment_id)
    values = [r for r in results if getattr(r, "kind", "value") == "value"]
    files = [r for r in results if getattr(r, "kind", "value") == "file"]
    campaign = None
    if exp.campaign_id:
        try:
            campaign = service.get_campaign(exp.campaign_id)
        except Exception:  # a dangling campaign id must not break the page
            campaign = None
    return {
        "exp": exp,
        "events": events,
        "last_event_id": events[-1].event_id if events else 0,
        "milestones": milestones_of(events),
        "results": values,
        "files": files,
        "numeric_results": [r for r in values if numeric(r.value) is not None],
        "recorder": recorder_info(exp),
        "allowed": allowed_actions(exp),
        "transitions": transitions_table(),
        "terminal": exp.status in TERMINAL,
        "campaign": campaign,
        "conditions": [
            c.model_dump(mode="json")
            for c in (exp.experiment_design.resource_conditions if exp.experiment_design else [])
        ],
        "result_charts": result_charts(values),
        "file_url": lambda f: file_url(exp.experiment_id, f),
        "timeline_svg": charts.timeline_chart(
            f"Status timeline of {exp.run_name or exp.name}", spans, now=now
        ),
        "json_url": f"/experiment/{exp.experiment_id}",
        "events_url": f"/experiment/{exp.experiment_id}/events",
    }


def _campaign_rows(service: ExperimentService, campaign_id: str) -> list[dict[str, Any]]:
    experiments = service.list_experiments(
        ExperimentQuery(campaign_id=campaign_id, limit=CAMPAIGN_LIMIT, sort="created_at")
    )
    table_lister = getattr(service, "campaign_results", None)
    by_id: dict[str, dict[str, Any]] = {}
    if table_lister is not None:
        for row in table_lister(campaign_id):
            by_id[str(row.get("experiment_id"))] = dict(row.get("results", {}))
    return [flatten(e, by_id.get(e.experiment_id)) for e in experiments]


def campaign_context(
    service: ExperimentService, campaign_id: str, x: str | None, y: str | None
) -> dict[str, Any]:
    """Everything the campaign page shows; ``x``/``y`` choose the plotted parameter and result."""
    campaign = service.get_campaign(campaign_id)
    rows = _campaign_rows(service, campaign.campaign_id)
    counts = {s.value: 0 for s in ExperimentStatus}
    for row in rows:
        counts[row["status"]] += 1
    total = len(rows)
    finished = sum(counts[s.value] for s in TERMINAL)
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    x_options = [k for k in keys if k.startswith("parameters.")]
    y_options = [
        k
        for k in keys
        if (k.startswith(("results.", "metadata.")) or k in ("duration_s", "progress"))
        and any(numeric(r.get(k)) is not None for r in rows)
    ]
    y_options.sort(key=lambda k: (_rank(k), k))
    # by default plot against a parameter that varies, numeric ones first
    x_options.sort(key=lambda k: (not _varies(rows, k), not _all_numeric(rows, k), k))
    x = x if x in x_options else (x_options[0] if x_options else None)
    y = y if y in y_options else (y_options[0] if y_options else None)
    name = campaign.campaign_name
    points = plot_points(rows, x, y) if x and y else []
    results_svg = charts.scatter_chart(
        f"{_label(y) if y else 'Results'} against {_label(x) if x else 'a parameter'} ({name})",
        points,
        x_label=_label(x) if x else "parameter",
        y_label=_label(y) if y else "result",
        line=len(points) > 1 and all(not isinstance(p.x, str) for p in points),
    )
    status_svg = charts.bar_chart(
        f"Experiments of {name} by status",
        status_bars(counts),
        x_label="status",
        y_label="experiments",
    )
    report = getattr(service, "campaign_report", None) is not None
    return {
        "campaign": campaign,
        "rows": rows[:200],
        "total": total,
        "finished": finished,
        "fraction": finished / total if total else 0.0,
        "counts": counts,
        "x": x,
        "y": y,
        "x_options": x_options,
        "y_options": y_options,
        "points": len(points),
        "status_svg": status_svg,
        "results_svg": results_svg,
        "has_report": report,
        "json_url": f"/campaign/{campaign.campaign_id}",
        "counts_url": f"/experiments/status-counts?campaign_id={campaign.campaign_id}",
        "experiments_url": f"/experiments?campaign_id={campaign.campaign_id}&number=0",
    }


def _rank(key: str) -> int:
    return 0 if key.startswith("results.") else 1 if key.startswith("metadata.") else 2


def _varies(rows: list[dict[str, Any]], key: str) -> bool:
    return len({repr(r.get(key)) for r in rows if r.get(key) is not None}) > 1


def _all_numeric(rows: list[dict[str, Any]], key: str) -> bool:
    return all(numeric(r.get(key)) is not None for r in rows if r.get(key) is not None)


def _label(key: str) -> str:
    return key.split(".", 1)[1] if "." in key else key.replace("_s", " (s)")


def queue_context(service: ExperimentService) -> dict[str, Any]:
    """Queued experiments in claim order, and what is running or paused, with worker and times."""
    queued = service.list_experiments(
        ExperimentQuery(statuses=[ExperimentStatus.QUEUED], limit=QUEUE_LIMIT, sort="-priority")
    )
    queued.sort(key=lambda e: (-e.priority, e.created_at, e.experiment_id))
    running = service.list_experiments(
        ExperimentQuery(
            statuses=[ExperimentStatus.IN_PROGRESS, ExperimentStatus.PAUSED],
            limit=QUEUE_LIMIT,
            sort="started_at",
        )
    )
    queued_total = service.count_experiments(ExperimentQuery(statuses=[ExperimentStatus.QUEUED]))
    return {
        "queued": queued,
        "running": running,
        "queued_total": queued_total,
        "now": service.clock(),
        "json_url": "/experiments?status=queued&number=500&sort=-priority",
        "running_url": "/experiments?status=in_progress,paused&number=500&sort=started_at",
    }
