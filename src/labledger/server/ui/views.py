"""What the pages show, built from the service: the same data the JSON twins answer with.

Pure functions of domain objects (no HTTP here), so each is shared by a page route and by its
JSON twin, and tested without a browser.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from labledger.core.lifecycle import (
    CAMPAIGN_TRANSITIONS,
    TERMINAL,
    TRANSITIONS,
    Action,
    CampaignStatus,
    ExperimentStatus,
    target_of,
)
from labledger.core.models import Event, Experiment, experiment_to_wire
from labledger.server.ui.charts import STATUS_COLORS, Bar, Point, Span

__all__ = [
    "CAMPAIGN_ACTIONS",
    "CONTROL_ACTIONS",
    "allowed_actions",
    "campaign_allowed",
    "campaign_transitions_table",
    "compare",
    "flatten",
    "numeric",
    "plot_points",
    "recorder_info",
    "status_bars",
    "status_spans",
    "timeline_end",
    "transitions_table",
    "value_text",
]

#: the actions the experiment page offers, in button order
CONTROL_ACTIONS: tuple[Action, ...] = (Action.PAUSE, Action.CONTINUE, Action.END, Action.CANCEL)


def allowed_actions(exp: Experiment) -> dict[str, bool]:
    """Which control actions the transition table allows from the experiment's state.

    An action that would change nothing (pausing a paused experiment) counts as not allowed:
    its button would do nothing.
    """
    out: dict[str, bool] = {}
    for action in CONTROL_ACTIONS:
        target = target_of(action, started=exp.started_at is not None)
        out[action.value] = target != exp.status and target in TRANSITIONS[exp.status]
    return out


#: campaign control action -> the state it asks for
CAMPAIGN_ACTIONS: dict[str, CampaignStatus] = {
    "pause": CampaignStatus.PAUSED,
    "resume": CampaignStatus.ACTIVE,
    "cancel": CampaignStatus.CANCELLED,
}


def campaign_allowed(status: CampaignStatus) -> dict[str, bool]:
    """Which campaign controls the campaign lifecycle allows from ``status``.

    Resuming is only offered to a paused campaign (a planned one starts with its experiments).
    """
    out = {
        action: target in CAMPAIGN_TRANSITIONS[status]
        for action, target in CAMPAIGN_ACTIONS.items()
    }
    out["resume"] = status is CampaignStatus.PAUSED
    return out


def campaign_transitions_table() -> dict[str, list[str]]:
    """The campaign transition table as JSON, for the page's script."""
    return {s.value: sorted(t.value for t in ts) for s, ts in CAMPAIGN_TRANSITIONS.items()}


def transitions_table() -> dict[str, list[str]]:
    """The transition table as JSON (the page's script re-checks buttons after a live update)."""
    return {s.value: sorted(t.value for t in targets) for s, targets in TRANSITIONS.items()}


def status_spans(events: Sequence[Event]) -> list[Span]:
    """Periods spent in each state, from the status-bearing events of the log (oldest first)."""
    spans: list[Span] = []
    for ev in events:
        if not ev.to_status or ev.to_status == (spans[-1].state if spans else None):
            continue
        if spans:
            spans[-1] = Span(spans[-1].state, spans[-1].start, ev.at)
        spans.append(Span(ev.to_status, ev.at))
    return spans


def timeline_end(exp: Experiment, now: datetime) -> datetime:
    """Where an experiment's timeline ends: when it ended (so it stops growing), else now."""
    return exp.ended_at if exp.status in TERMINAL and exp.ended_at else now


def status_bars(counts: dict[str, int]) -> list[Bar]:
    """One bar per status present, in lifecycle order."""
    return [
        Bar(status.value, float(counts[status.value]), STATUS_COLORS[status.value])
        for status in ExperimentStatus
        if counts.get(status.value)
    ]


def numeric(value: Any) -> float | None:
    """A plottable number, or None (booleans and non-finite values are not plotted)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, dict) and "value" in value:
            return numeric(value["value"])
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def plot_points(
    rows: Sequence[dict[str, Any]],
    x_key: str,
    y_key: str,
    href: str = "/ui/experiments/{}",
    group_keys: Sequence[str] = (),
) -> list[Point]:
    """Points of ``y_key`` against ``x_key`` from flattened rows (see :func:`flatten`), each in
    the group of its values of ``group_keys`` (``"solvent=water, seed=1"``)."""
    points: list[Point] = []
    for row in rows:
        y = numeric(row.get(y_key))
        x_raw = row.get(x_key)
        if y is None or x_raw is None:
            continue
        x_num = numeric(x_raw)
        x: float | str = x_num if x_num is not None else value_text(x_raw)
        label = str(row.get("run_name") or row.get("name") or row["id"])
        group = ", ".join(
            f"{key.split('.', 1)[-1]}={value_text(row.get(key))}" for key in group_keys
        )
        points.append(Point(x, y, label, href.format(row["id"]), group))
    return points


def value_text(value: Any) -> str:
    """A short readable form of any JSON value."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _walk(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _walk(f"{prefix}.{key}", item, out)
    else:
        out[prefix] = value


def flatten(exp: Experiment, results: dict[str, Any] | None = None) -> dict[str, Any]:
    """An experiment as one flat row: identity, state, times, ``parameters.*``, ``results.*``."""
    row: dict[str, Any] = {
        "id": exp.experiment_id,
        "name": exp.name,
        "run_name": exp.run_name,
        "status": exp.status.value,
        "campaign_id": exp.campaign_id,
        "created_at": exp.created_at.isoformat(),
        "started_at": exp.started_at.isoformat() if exp.started_at else None,
        "ended_at": exp.ended_at.isoformat() if exp.ended_at else None,
        "duration_s": (exp.ended_at - exp.started_at).total_seconds()
        if exp.started_at and exp.ended_at
        else None,
        "progress": exp.progress,
        "priority": exp.priority,
    }
    for key, value in sorted(exp.parameters.items()):
        _walk(f"parameters.{key}", value, row)
    for key, value in sorted((results or {}).items()):
        row[f"results.{key}"] = value
    for key, value in sorted(exp.metadata.items()):
        _walk(f"metadata.{key}", value, row)
    return row


def compare(
    experiments: Sequence[Experiment], results: Sequence[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Experiments side by side: every field any of them has, and whether the values differ."""
    rows = [
        flatten(e, r) for e, r in zip(experiments, results or [{}] * len(experiments), strict=True)
    ]
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    keys.remove("id")
    table = []
    for key in keys:
        values = [row.get(key) for row in rows]
        texts = {json.dumps(v, sort_keys=True, default=str) for v in values}
        table.append({"key": key, "values": values, "differs": len(texts) > 1})
    return {
        "experiments": [experiment_to_wire(e) for e in experiments],
        "ids": [e.experiment_id for e in experiments],
        "fields": table,
        "differing": [row["key"] for row in table if row["differs"]],
    }


#: metadata keys a recorder run carries, in the order the page shows them
RECORDER_KEYS = ("hypothesis", "observations", "code", "code_version", "phases", "logs", "outputs")


def recorder_info(exp: Experiment) -> dict[str, Any]:
    """What a recorder run pushed with the experiment (``recorder.*`` metadata), keys unprefixed.

    Accepts both flat keys (``"recorder.hypothesis"``) and a nested ``"recorder"`` object.
    """
    info: dict[str, Any] = {}
    nested = exp.metadata.get("recorder")
    if isinstance(nested, dict):
        info.update(nested)
    for key, value in exp.metadata.items():
        if key.startswith("recorder."):
            info[key.removeprefix("recorder.")] = value
    ordered = {k: info[k] for k in RECORDER_KEYS if k in info}
    ordered.update({k: v for k, v in info.items() if k not in ordered})
    return ordered
