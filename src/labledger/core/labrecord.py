"""An experiment's lab record: what the MADSci managers around it hold, joined on ownership ids.

The record is read, never copied: every section says when it was read and, when its manager did
not answer, since when it has been unreachable. This module holds the shapes, the protocol the
server's gateway implements, and the pure joins; it does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

__all__ = [
    "CONTROL_ACTIONS",
    "LabReader",
    "LabSection",
    "Manager",
    "SectionState",
    "WorkflowControl",
    "control_action_for",
    "datapoint_columns",
    "datapoint_plot_values",
    "datapoint_summary",
    "is_unfinished",
    "lab_report",
    "owned_by",
    "workflow_ids",
    "workflow_summary",
]

JsonDict = dict[str, Any]


class Manager(StrEnum):
    """The MADSci managers a lab record is read from."""

    WORKCELL = "workcell"
    DATA = "data"
    RESOURCE = "resource"
    EVENT = "event"


class SectionState(StrEnum):
    """How a section of the record was read."""

    OK = "ok"
    UNREACHABLE = "unreachable"  # the manager did not answer, or answered garbage
    ABSENT = "absent"  # no such manager configured


@dataclass
class LabSection:
    """One section of the record (workflows, data points, resources or events)."""

    manager: Manager
    state: SectionState
    items: list[JsonDict] = field(default_factory=list)
    read_at: datetime | None = None
    unreachable_since: datetime | None = None
    error: str | None = None

    def as_json(self) -> JsonDict:
        """The section as the ``/lab`` routes answer it."""
        return {
            "manager": self.manager.value,
            "state": self.state.value,
            "read_at": self.read_at.isoformat() if self.read_at else None,
            "unreachable_since": (
                self.unreachable_since.isoformat() if self.unreachable_since else None
            ),
            "error": self.error,
            "items": self.items,
        }

    def describe(self) -> str:
        """One line for a page or report: when it was read, or since when it is unreachable."""
        if self.state is SectionState.ABSENT:
            return f"no {self.manager.value} manager configured"
        if self.state is SectionState.UNREACHABLE:
            since = (
                self.unreachable_since.isoformat(timespec="seconds")
                if self.unreachable_since
                else "?"
            )
            return f"{self.manager.value} unreachable since {since}"
        read = self.read_at.isoformat(timespec="seconds") if self.read_at else "?"
        return f"read from the {self.manager.value} manager at {read}"


class LabReader(Protocol):
    """What the lab record needs from the managers (implemented at the server's edge)."""

    def configured(self, manager: Manager) -> bool:
        """Whether the lab has this manager."""
        ...

    async def workflows(self, experiment_ids: Sequence[str], *, fresh: bool = False) -> LabSection:
        """Every workflow (active and archived) owned by one of the experiments."""
        ...

    async def datapoints(
        self, experiment_ids: Sequence[str], workflow_ids: Sequence[str]
    ) -> LabSection:
        """Data points owned by the experiments or produced by steps of the workflows."""
        ...

    async def resources(self, experiment_ids: Sequence[str]) -> LabSection:
        """Resources owned by the experiments."""
        ...

    async def events(
        self, experiment_ids: Sequence[str], workflow_ids: Sequence[str]
    ) -> LabSection:
        """Events logged for the experiments or their workflows."""
        ...


class WorkflowControl(Protocol):
    """Pausing, resuming and cancelling one workflow on the Workcell Manager."""

    async def control(self, workflow_id: str, action: str) -> str:
        """Apply ``action`` (pause, resume, cancel); the outcome in a few words. Raises
        :class:`labledger.errors.LabUnavailable` when the workcell cannot be reached."""
        ...


#: what an experiment's status change asks of its unfinished workflows
CONTROL_ACTIONS = ("pause", "resume", "cancel")


def control_action_for(from_status: str | None, to_status: str | None) -> str | None:
    """The workflow action a status change of an experiment calls for, if any."""
    if to_status == "paused":
        return "pause"
    if to_status == "in_progress" and from_status == "paused":
        return "resume"
    if to_status == "cancelled":
        return "cancel"
    return None


def owned_by(workflow: Mapping[str, Any], experiment_ids: Iterable[str]) -> bool:
    """Whether a workflow's ``ownership_info.experiment_id`` is one of ``experiment_ids``."""
    ownership = workflow.get("ownership_info")
    if not isinstance(ownership, Mapping):
        return False
    return ownership.get("experiment_id") in set(experiment_ids)


def is_unfinished(workflow: Mapping[str, Any]) -> bool:
    """Whether a workflow can still be paused, resumed or cancelled (not terminal)."""
    status = workflow.get("status")
    if not isinstance(status, Mapping):
        return False
    return not (
        status.get("terminal")
        or status.get("completed")
        or status.get("cancelled")
        or status.get("failed")
    )


def workflow_ids(workflows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The ids of workflows, in order, without repeats."""
    seen: dict[str, None] = {}
    for workflow in workflows:
        wid = workflow.get("workflow_id")
        if isinstance(wid, str):
            seen.setdefault(wid, None)
    return list(seen)


def datapoint_plot_values(datapoint: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of a JSON data point, by name: a number is named by its label, the numeric
    fields of an object by ``label.field``. Booleans are not numbers here."""
    if datapoint.get("data_type") != "json":
        return {}
    label = str(datapoint.get("label") or "value")
    value = datapoint.get("value")
    if isinstance(value, bool):
        return {}
    if isinstance(value, int | float):
        return {label: float(value)}
    if isinstance(value, Mapping):
        return {
            f"{label}.{key}": float(item)
            for key, item in value.items()
            if isinstance(item, int | float) and not isinstance(item, bool)
        }
    return {}


def _step_summary(step: Mapping[str, Any]) -> JsonDict:
    return {
        "name": step.get("name"),
        "action": step.get("action"),
        "node": step.get("node"),
        "status": step.get("status"),
        "start_time": step.get("start_time"),
        "end_time": step.get("end_time"),
    }


def workflow_summary(workflow: Mapping[str, Any]) -> JsonDict:
    """What a report keeps of a workflow: who owns it, its status and its steps."""
    status = workflow.get("status")
    word = "submitted"
    if isinstance(status, Mapping):
        word = next(
            (
                w
                for w in ("cancelled", "failed", "completed", "paused", "running", "queued")
                if status.get(w)
            ),
            word,
        )
    ownership = workflow.get("ownership_info")
    steps = workflow.get("steps")
    return {
        "workflow_id": workflow.get("workflow_id"),
        "name": workflow.get("name"),
        "status": word,
        "experiment_id": ownership.get("experiment_id") if isinstance(ownership, Mapping) else None,
        "submitted_time": workflow.get("submitted_time"),
        "steps": [_step_summary(s) for s in steps if isinstance(s, Mapping)]
        if isinstance(steps, list)
        else [],
    }


def datapoint_summary(point: Mapping[str, Any]) -> JsonDict:
    """What a report keeps of a data point: its id, label, value (or file) and producer."""
    ownership = point.get("ownership_info")
    owner = ownership if isinstance(ownership, Mapping) else {}
    return {
        "_id": point.get("_id"),
        "label": point.get("label"),
        "data_type": point.get("data_type"),
        "value": point.get("value"),
        "path": point.get("path"),
        "experiment_id": owner.get("experiment_id"),
        "workflow_id": owner.get("workflow_id"),
        "step_id": owner.get("step_id"),
        "data_timestamp": point.get("data_timestamp"),
    }


def lab_report(sections: Mapping[str, LabSection]) -> JsonDict:
    """The ``lab`` part of an experiment or campaign report: each section with its stamp."""
    out: JsonDict = {}
    for name, section in sections.items():
        entry = section.as_json()
        entry["note"] = section.describe()
        if name == "workflows":
            entry["items"] = [workflow_summary(w) for w in section.items]
        elif name == "datapoints":
            entry["items"] = [datapoint_summary(p) for p in section.items]
        elif name == "events":
            entry["count"] = len(section.items)
            entry["items"] = [
                {
                    "event_type": e.get("event_type"),
                    "event_timestamp": e.get("event_timestamp"),
                    "message": (e.get("event_data") or {}).get("message")
                    if isinstance(e.get("event_data"), Mapping)
                    else None,
                }
                for e in section.items[-200:]
            ]
        out[name] = entry
    return out


def datapoint_columns(
    points: Iterable[Mapping[str, Any]], workflows: Iterable[Mapping[str, Any]]
) -> dict[str, dict[str, float]]:
    """The numeric data-point values of each experiment, by ``datapoint.<label>`` name (the
    last value wins when a label repeats), for a campaign's results table. A point made by a
    workflow's step belongs to the experiment owning the workflow."""
    owner_of: dict[str, str] = {}
    for workflow in workflows:
        ownership = workflow.get("ownership_info")
        wid = workflow.get("workflow_id")
        if isinstance(ownership, Mapping) and isinstance(wid, str):
            eid = ownership.get("experiment_id")
            if isinstance(eid, str):
                owner_of[wid] = eid
    out: dict[str, dict[str, float]] = {}
    for point in points:
        ownership = point.get("ownership_info")
        if not isinstance(ownership, Mapping):
            continue
        owner = ownership.get("experiment_id") or owner_of.get(str(ownership.get("workflow_id")))
        if not isinstance(owner, str):
            continue
        for name, value in datapoint_plot_values(point).items():
            out.setdefault(owner, {})[f"datapoint.{name}"] = value
    return out
