"""The JSON object of an experiment straight from its row, for the experiment lists.

``experiment_to_wire(row_to_experiment(row))`` made two models per row and validated its
design (``ExperimentDesign.model_validate``): most of the server's CPU time for a list. The
reader here gives the same object, key for key and value for value, from the row alone, and
falls back to the models for what it cannot vouch for (a design with resource conditions, an
odd design from an import): ``tests/server/test_experiments_wire.py`` compares the bodies.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from labledger.core.ids import is_ulid
from labledger.core.lifecycle import ExperimentStatus, madsci_status
from labledger.core.models import (
    MAX_NAME,
    MAX_TEXT,
    ExperimentDesign,
    JsonObject,
    OwnershipInfo,
    design_to_wire,
)
from labledger.storage.tables import experiments

__all__ = ["row_to_experiment_wire"]

_OWNERSHIP_FIELDS = tuple(OwnershipInfo.model_fields)

#: stored status -> (MADSci's view of it, the lifecycle status), as experiment_to_wire gives them
_STATUSES = {s.value: (madsci_status(s).value, s.value) for s in ExperimentStatus}

# Where each column of ``experiments`` is in the rows of ``select(experiments, ...)``: rows are
# read by position, as a Row's attribute or mapping lookup costs about as much as the rest.
_AT = {column.key: n for n, column in enumerate(experiments.c)}
_ID, _STATUS, _RUN_NAME, _RUN_DESCRIPTION, _CAMPAIGN, _DESIGN, _OWNERSHIP = (
    _AT[key]
    for key in ("id", "status", "run_name", "run_description", "campaign_id", "design", "ownership")
)
_PARAMETERS, _METADATA, _PRIORITY, _NOT_BEFORE, _PROGRESS, _ATTEMPTS, _VERSION = (
    _AT[key]
    for key in (
        "parameters",
        "metadata",
        "priority",
        "not_before",
        "progress",
        "attempts",
        "version",
    )
)
_CREATED, _UPDATED, _STARTED, _ENDED, _DELETED, _WORKER, _CLAIMED, _LEASE = (
    _AT[key]
    for key in (
        "created_at",
        "updated_at",
        "started_at",
        "ended_at",
        "deleted_at",
        "worker_id",
        "claimed_at",
        "lease_expires_at",
    )
)


def row_to_experiment_wire(row: Any) -> JsonObject:
    """The JSON object of an experiment from its row (of ``select(experiments, ...)``): what
    ``experiment_to_wire(row_to_experiment(row))`` gives, without the models."""
    stored = row[_STATUS]
    try:
        status, lifecycle_status = _STATUSES[stored]
    except KeyError:
        ExperimentStatus(stored)  # raises the error the model's reader raised
        raise
    design = row[_DESIGN]
    ownership = row[_OWNERSHIP]
    wire: JsonObject = {
        "_id": row[_ID],
        "status": status,
        "lifecycle_status": lifecycle_status,
        # a design that is null or {} reads as none, as row_to_experiment reads it
        "experiment_design": _design_wire(design) if design else None,
        # only the known ids that are set, in the model's order (OwnershipInfo.compact)
        "ownership_info": {k: v for k in _OWNERSHIP_FIELDS if (v := ownership.get(k)) is not None}
        if ownership
        else {},
        "run_name": row[_RUN_NAME],
        "run_description": row[_RUN_DESCRIPTION],
        "started_at": _iso(row[_STARTED]),
        "ended_at": _iso(row[_ENDED]),
        "created_at": _iso(row[_CREATED]),
        "updated_at": _iso(row[_UPDATED]),
        "campaign_id": row[_CAMPAIGN],
        "parameters": row[_PARAMETERS],
        "metadata": row[_METADATA],
        "priority": row[_PRIORITY],
        "not_before": _iso(row[_NOT_BEFORE]),
        "progress": row[_PROGRESS],
        "attempts": row[_ATTEMPTS],
        "version": row[_VERSION],
        "worker_id": row[_WORKER],
        "claimed_at": _iso(row[_CLAIMED]),
        "lease_expires_at": _iso(row[_LEASE]),
    }
    deleted = row[_DELETED]
    if deleted is not None:
        wire["deleted_at"] = deleted.isoformat()
    return wire


def _design_wire(design: Any) -> JsonObject:
    """``design_to_wire(ExperimentDesign.model_validate(design))`` of a stored design.

    A design as the app stores it (``model_dump`` of a valid one) without resource conditions
    is copied field by field, after the checks the model's validation would make of it; any
    other (conditions, whose dump adds their defaults; a value of another type; a name out of
    bounds; an id that is not a ULID) goes through the models, which answer it exactly or
    raise the error they raised.
    """
    if type(design) is dict:
        name = design.get("experiment_name")
        description = design.get("experiment_description")
        parameters = design.get("parameters", _EMPTY)
        ownership = design.get("ownership_info", _EMPTY)
        if (
            type(name) is str
            and 0 < len(name) <= MAX_NAME
            and (description is None or (type(description) is str and len(description) <= MAX_TEXT))
            and design.get("resource_conditions", _NONE) == _NONE
            and type(parameters) is dict
            and type(ownership) is dict
        ):
            # OwnershipInfo.compact: the known ids that are set, in the model's order (a stored
            # design holds every id, mostly nulls: its model_dump)
            owners = {k: v for k in _OWNERSHIP_FIELDS if (v := ownership.get(k)) is not None}
            if all(type(v) is str and _is_ulid(v) for v in owners.values()):
                return {
                    "experiment_name": name,
                    "experiment_description": description,
                    "resource_conditions": [],
                    "ownership_info": owners,
                    "parameters": dict(parameters),
                }
    return design_to_wire(ExperimentDesign.model_validate(design))


@functools.lru_cache(maxsize=4096)
def _is_ulid(value: str) -> bool:
    # a lab's designs name few owners, projects and labs: each is checked once
    return is_ulid(value)


_EMPTY: dict[str, Any] = {}
_NONE: list[Any] = []


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
