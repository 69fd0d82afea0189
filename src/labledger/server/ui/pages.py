"""The context of each detail page, built from service calls (the JSON twins' data)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from labledger.core.lab import Lab
from labledger.core.lifecycle import TERMINAL, ExperimentStatus
from labledger.core.models import ExperimentQuery
from labledger.core.records import ResultKind
from labledger.core.reports import ReportService
from labledger.errors import CampaignNotFound
from labledger.server.ui import charts
from labledger.server.ui.views import (
    allowed_actions,
    campaign_allowed,
    campaign_transitions_table,
    numeric,
    plot_points,
    recorder_info,
    status_bars,
    status_spans,
    timeline_end,
    transitions_table,
)

__all__ = ["campaign_context", "experiment_context", "queue_context"]

#: the most experiments the campaign page lists (the chart plots them all)
CAMPAIGN_ROWS = 500
#: the most rows the queue page shows per section
QUEUE_LIMIT = 500


def file_url(experiment_id: str, result: Any) -> str:
    """Where a file result downloads from."""
    return f"/experiment/{experiment_id}/files/{quote(result.name, safe='')}"


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


def experiment_context(lab: Lab, experiment_id: str) -> dict[str, Any]:
    """Everything the experiment page shows."""
    service = lab.experiments
    exp = service.get_experiment(experiment_id)
    events = service.list_events(experiment_id=exp.experiment_id, limit=10_000)
    results = lab.results.list_results(exp.experiment_id)
    values = [r for r in results if r.kind is ResultKind.VALUE]
    campaign = None
    if exp.campaign_id:
        with contextlib.suppress(CampaignNotFound):  # a dangling id must not break the page
            campaign = service.get_campaign(exp.campaign_id)
    base = f"/experiment/{exp.experiment_id}"
    return {
        "exp": exp,
        "events": events,
        "last_event_id": events[-1].event_id if events else 0,
        "milestones": lab.results.list_milestones(exp.experiment_id),
        "results": values,
        "files": [r for r in results if r.kind is ResultKind.FILE],
        "recorder": recorder_info(exp),
        "other_metadata": {
            k: v
            for k, v in exp.metadata.items()
            if k != "recorder" and not k.startswith("recorder.")
        },
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
            f"Status timeline of {exp.run_name or exp.name}",
            status_spans(events),
            now=timeline_end(exp, service.clock()),
        ),
        "json_url": base,
        "events_url": f"{base}/events",
        "results_url": f"{base}/results",
        "milestones_url": f"{base}/milestones",
        "report_url": f"{base}/report",
    }


def _flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row of the campaign results table with ``parameters.*`` and ``results.*`` keys."""
    flat: dict[str, Any] = {
        "id": row["experiment_id"],
        "run_name": row.get("run_name"),
        "status": row["status"],
        "duration_s": row.get("duration_s"),
        "attempts": row.get("attempts"),
        "worker_id": row.get("worker_id"),
    }
    for key, value in sorted(row.get("parameters", {}).items()):
        flat[f"parameters.{key}"] = value
    for key, value in sorted(row.get("results", {}).items()):
        flat[f"results.{key}"] = value
    return flat


def campaign_context(
    reports: ReportService,
    campaign_id: str,
    x: str | None,
    y: str | None,
    extra_columns: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, Any]:
    """Everything the campaign page shows; ``x``/``y`` choose the plotted parameter and result.

    Built from the campaign report, the data of ``GET /campaign/{id}/results`` and ``/progress``.
    ``extra_columns`` adds values per experiment id (``datapoint.<label>``: the numeric values of
    its data points in the MADSci lab), which can be columns and either plot axis.
    """
    report = reports.campaign_report(campaign_id)
    campaign = reports.store.campaigns.get(campaign_id)
    rows = [_flat_row(r) for r in report["rows"]]
    for row in rows:
        row.update((extra_columns or {}).get(row["id"], {}))
    counts: dict[str, int] = {s.value: 0 for s in ExperimentStatus}
    for row in rows:
        counts[row["status"]] += 1
    total = len(rows)
    finished = sum(counts[s.value] for s in TERMINAL)
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    x_options = [k for k in keys if k.startswith(("parameters.", "datapoint."))]
    y_options = [
        k
        for k in keys
        if (k.startswith(("results.", "datapoint.")) or k == "duration_s")
        and any(numeric(r.get(k)) is not None for r in rows)
    ]
    y_options.sort(key=lambda k: (_rank(k), k))
    # by default plot against a parameter that varies, numeric ones first
    x_options.sort(key=lambda k: (not _varies(rows, k), not _all_numeric(rows, k), k))
    x = x if x in x_options else (x_options[0] if x_options else None)
    y = y if y in y_options else (y_options[0] if y_options else None)
    name = campaign.campaign_name
    # the other swept parameters split the runs into groups: a line joins one group's points
    others = [k for k in keys if k.startswith("parameters.") and k != x and _varies(rows, k)]
    points = plot_points(rows, x, y, group_keys=others) if x and y else []
    results_svg = charts.scatter_chart(
        f"{_label(y) if y else 'Results'} against {_label(x) if x else 'a parameter'} ({name})",
        points,
        x_label=_label(x) if x else "parameter",
        y_label=_label(y) if y else "result",
        line=len(points) > 1 and all(not isinstance(p.x, str) for p in points),
        group_label=", ".join(_label(k) for k in others) or None,
    )
    status_svg = charts.bar_chart(
        f"Experiments of {name} by status",
        status_bars(counts),
        x_label="status",
        y_label="experiments",
    )
    base = f"/campaign/{campaign.campaign_id}"
    return {
        "campaign": campaign,
        "rows": rows[:CAMPAIGN_ROWS],
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
        "allowed": campaign_allowed(campaign.status),
        "transitions": campaign_transitions_table(),
        "json_url": base,
        "progress_url": f"{base}/progress",
        "results_url": f"{base}/results",
        "report_url": f"{base}/report",
    }


def _rank(key: str) -> int:
    return 0 if key.startswith("results.") else 1 if key.startswith("datapoint.") else 2


def _varies(rows: list[dict[str, Any]], key: str) -> bool:
    return len({repr(r.get(key)) for r in rows if r.get(key) is not None}) > 1


def _all_numeric(rows: list[dict[str, Any]], key: str) -> bool:
    return all(numeric(r.get(key)) is not None for r in rows if r.get(key) is not None)


def _label(key: str) -> str:
    return key.split(".", 1)[1] if "." in key else key.replace("_s", " (s)")


def queue_context(lab: Lab) -> dict[str, Any]:
    """Queued experiments in claim order, and what is running or paused, with worker and times.

    The same store calls as ``GET /queue``, its JSON twin.
    """
    queued = lab.store.queue.find(
        [ExperimentStatus.QUEUED.value], campaign_id=None, limit=QUEUE_LIMIT, offset=0
    )
    running = lab.store.queue.find(
        [ExperimentStatus.IN_PROGRESS.value, ExperimentStatus.PAUSED.value],
        campaign_id=None,
        limit=QUEUE_LIMIT,
        offset=0,
    )
    queued_total = lab.experiments.count_experiments(
        ExperimentQuery(statuses=[ExperimentStatus.QUEUED])
    )
    return {
        "queued": queued,
        "running": running,
        "queued_total": queued_total,
        "now": lab.experiments.clock(),
        "json_url": f"/queue?number={QUEUE_LIMIT}",
    }
