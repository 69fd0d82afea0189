"""Domain models. The MADSci-shaped ones keep MADSci 0.8.1's field names and checks.

Wire notes (see ``docs`` in the README): an experiment's id travels as ``_id``; ``status`` on the
wire is what a MADSci 0.8.1 client can parse, and ``lifecycle_status`` carries the full state
(:func:`experiment_to_wire`). Our models accept both ``_id`` and ``experiment_id`` on input, so
MADSci's silent alias trap does not exist here.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from labledger.core.ids import is_ulid, new_ulid, utcnow
from labledger.core.lifecycle import (
    CampaignStatus,
    ExperimentStatus,
    madsci_status,
)
from labledger.core.vocabulary import MAX_NAME, MAX_TEXT, EventType
from labledger.core.where import FieldFilter, parse_field_sort

__all__ = [
    "MAX_NAME",
    "MAX_TEXT",
    "SORT_KEYS",
    "Condition",
    "Conditions",
    "Event",
    "EventType",
    "Experiment",
    "ExperimentDesign",
    "ExperimentPublic",
    "ExperimentQuery",
    "ExperimentRegistration",
    "ExperimentUpdate",
    "ExperimentalCampaign",
    "LabModel",
    "NoResourceInLocationCondition",
    "OperatorTypeEnum",
    "OwnershipInfo",
    "ResourceChildFieldCheckCondition",
    "ResourceFieldCheckCondition",
    "ResourceInLocationCondition",
    "campaign_to_wire",
    "design_to_wire",
    "experiment_to_wire",
]


Name = Annotated[str, Field(max_length=MAX_NAME)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
JsonObject = dict[str, Any]


class LabModel(BaseModel):
    """Base of every model: unknown keys ignored (as MADSci does), names or aliases accepted."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# --------------------------------------------------------------------------- ownership


_OWNERSHIP_FIELDS = (
    "user_id",
    "experiment_id",
    "campaign_id",
    "project_id",
    "node_id",
    "workcell_id",
    "lab_id",
    "step_id",
    "workflow_id",
    "manager_id",
)


class OwnershipInfo(LabModel):
    """Who and what owns a design or an experiment. Every id, when given, must be a ULID."""

    user_id: str | None = None
    experiment_id: str | None = None
    campaign_id: str | None = None
    project_id: str | None = None
    node_id: str | None = None
    workcell_id: str | None = None
    lab_id: str | None = None
    step_id: str | None = None
    workflow_id: str | None = None
    manager_id: str | None = None

    @field_validator(*_OWNERSHIP_FIELDS)
    @classmethod
    def _ulid(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not is_ulid(value):
            raise ValueError(
                f"Invalid ULID {value} for field {info.field_name} "
                "(expected a 26-character ULID or null)"
            )
        return value

    def compact(self) -> dict[str, str]:
        """The non-null ids only (MADSci's wire form: empty ownership is ``{}``)."""
        return {k: v for k in _OWNERSHIP_FIELDS if (v := getattr(self, k)) is not None}


# --------------------------------------------------------------------------- conditions


class OperatorTypeEnum(StrEnum):
    """Comparison used by field-check conditions."""

    IS_GREATER_THAN = "is_greater_than"
    IS_LESS_THAN = "is_less_than"
    IS_EQUAL_TO = "is_equal_to"
    IS_GREATER_THAN_OR_EQUAL_TO = "is_greater_than_or_equal_to"
    IS_LESS_THAN_OR_EQUAL_TO = "is_less_than_or_equal_to"


GridKey = str | int | tuple[int | str, int | str] | tuple[int | str, int | str, int | str]


class Condition(BaseModel):
    """Base of a resource condition; extra keys are kept, as in MADSci."""

    model_config = ConfigDict(extra="allow")

    condition_name: str = "A Condition"


class ResourceInLocationCondition(Condition):
    """A resource must be present at a location."""

    condition_type: Literal["resource_present"]
    location_id: str | None = None
    location_name: str | None = None
    key: GridKey = 0
    resource_class: str | None = None


class NoResourceInLocationCondition(Condition):
    """A location must be empty at ``key``."""

    condition_type: Literal["no_resource_present"]
    location_id: str | None = None
    location_name: str
    key: GridKey = 0


class ResourceFieldCheckCondition(Condition):
    """A field of a resource must compare true against a target value."""

    condition_type: Literal["resource_field_check"]
    resource_id: str | None = None
    resource_name: str | None = None
    field: str
    operator: OperatorTypeEnum
    target_value: Any


class ResourceChildFieldCheckCondition(Condition):
    """A field of a resource's child at ``key`` must compare true against a target value."""

    condition_type: Literal["resource_child_field_check"]
    resource_id: str | None = None
    resource_name: str | None = None
    field: str
    operator: OperatorTypeEnum
    key: GridKey = 0
    target_value: Any


Conditions = Annotated[
    ResourceInLocationCondition
    | NoResourceInLocationCondition
    | ResourceFieldCheckCondition
    | ResourceChildFieldCheckCondition,
    Field(discriminator="condition_type"),
]


# --------------------------------------------------------------------------- experiments


class ExperimentDesign(LabModel):
    """What an experiment is: its name, description, resource conditions and variables."""

    experiment_name: Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
    experiment_description: Text | None = None
    resource_conditions: list[Conditions] = Field(default_factory=list)
    ownership_info: OwnershipInfo = Field(default_factory=OwnershipInfo)
    parameters: JsonObject = Field(
        default_factory=dict, description="The design's variables, as a JSON object."
    )


InitialStatus = Literal["planned", "queued", "in_progress"]


class ExperimentRegistration(LabModel):
    """The body of ``POST /experiment``: MADSci's three fields plus labledger's extensions."""

    experiment_design: ExperimentDesign
    run_name: Name | None = None
    run_description: Text | None = None
    # labledger extensions, all optional so MADSci bodies work unchanged
    campaign_id: str | None = Field(
        default=None,
        description="Campaign to add the experiment to (else ownership's campaign_id).",
    )
    parameters: JsonObject = Field(
        default_factory=dict, description="This run's values; override the design's parameters."
    )
    metadata: JsonObject = Field(default_factory=dict)
    status: InitialStatus = Field(
        default="in_progress",
        description="planned and queued create the experiment without starting it.",
    )
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    not_before: datetime | None = Field(
        default=None, description="A queued experiment is not claimed before this time."
    )

    @field_validator("not_before")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("not_before must carry a time zone (e.g. 2026-01-01T12:00:00Z)")
        return value


class Experiment(LabModel):
    """One run of an experiment design, with its state and its timestamps (all UTC)."""

    experiment_id: str = Field(default_factory=new_ulid, alias="_id")
    status: ExperimentStatus = ExperimentStatus.IN_PROGRESS
    experiment_design: ExperimentDesign | None = None
    ownership_info: OwnershipInfo = Field(default_factory=OwnershipInfo)
    # bounded as the database columns are (an imported record arrives whole from a client)
    run_name: Name | None = None
    run_description: Text | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    campaign_id: str | None = Field(default=None, max_length=26)
    parameters: JsonObject = Field(default_factory=dict)
    metadata: JsonObject = Field(default_factory=dict)
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    not_before: datetime | None = None
    progress: float | None = None
    attempts: int = Field(default=0, ge=0, le=1_000_000)
    version: int = Field(default=1, ge=1, le=2**31 - 1)
    deleted_at: datetime | None = None
    # the queue: the worker holding (or that last held) the experiment, and its lease
    worker_id: str | None = Field(default=None, max_length=200)
    claimed_at: datetime | None = None
    lease_expires_at: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_wire(cls, data: Any) -> Any:
        # On the wire ``status`` is MADSci's view and ``lifecycle_status`` the full state.
        if isinstance(data, dict) and "lifecycle_status" in data:
            data = {**data, "status": data["lifecycle_status"]}
        return data

    @property
    def name(self) -> str | None:
        """The design's experiment name."""
        return self.experiment_design.experiment_name if self.experiment_design else None


class ExperimentPublic(LabModel):
    """An experiment as the API returns it (documents the JSON of :func:`experiment_to_wire`)."""

    id: str = Field(alias="_id", description="ULID of the experiment.")
    status: Literal["in_progress", "paused", "completed", "failed", "cancelled", "unknown"] = Field(
        description="MADSci 0.8.1 view of the state: planned and queued read as 'unknown'."
    )
    lifecycle_status: ExperimentStatus = Field(description="The full lifecycle state.")
    experiment_design: ExperimentDesign | None
    ownership_info: dict[str, str]
    run_name: str | None
    run_description: str | None
    started_at: datetime | None
    ended_at: datetime | None
    created_at: datetime
    updated_at: datetime
    campaign_id: str | None
    parameters: JsonObject
    metadata: JsonObject
    priority: int
    not_before: datetime | None
    progress: float | None
    attempts: int
    version: int
    deleted_at: datetime | None = None
    worker_id: str | None = Field(default=None, description="Worker holding (or last held) it.")
    claimed_at: datetime | None = Field(default=None, description="When that worker claimed it.")
    lease_expires_at: datetime | None = Field(
        default=None, description="The worker's lease ends then unless renewed by heartbeat."
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def design_to_wire(design: ExperimentDesign) -> JsonObject:
    """The JSON object of an experiment design (as :func:`experiment_to_wire` nests it)."""
    return {
        "experiment_name": design.experiment_name,
        "experiment_description": design.experiment_description,
        "resource_conditions": [c.model_dump(mode="json") for c in design.resource_conditions],
        "ownership_info": design.ownership_info.compact(),
        "parameters": design.parameters,
    }


def experiment_to_wire(exp: Experiment) -> JsonObject:
    """The JSON object of an experiment, as documented by :class:`ExperimentPublic`."""
    wire: JsonObject = {
        "_id": exp.experiment_id,
        "status": madsci_status(exp.status).value,
        "lifecycle_status": exp.status.value,
        "experiment_design": design_to_wire(exp.experiment_design)
        if exp.experiment_design
        else None,
        "ownership_info": exp.ownership_info.compact(),
        "run_name": exp.run_name,
        "run_description": exp.run_description,
        "started_at": _iso(exp.started_at),
        "ended_at": _iso(exp.ended_at),
        "created_at": _iso(exp.created_at),
        "updated_at": _iso(exp.updated_at),
        "campaign_id": exp.campaign_id,
        "parameters": exp.parameters,
        "metadata": exp.metadata,
        "priority": exp.priority,
        "not_before": _iso(exp.not_before),
        "progress": exp.progress,
        "attempts": exp.attempts,
        "version": exp.version,
        "worker_id": exp.worker_id,
        "claimed_at": _iso(exp.claimed_at),
        "lease_expires_at": _iso(exp.lease_expires_at),
    }
    if exp.deleted_at is not None:
        wire["deleted_at"] = _iso(exp.deleted_at)
    return wire


class ExperimentUpdate(LabModel):
    """The body of ``PATCH /experiment/{id}``: fields given replace the stored ones."""

    model_config = ConfigDict(extra="forbid")

    run_name: Name | None = None
    run_description: Text | None = None
    parameters: JsonObject | None = None
    metadata: JsonObject | None = None


#: what experiment lists can be sorted by; ``-name`` sorts descending
SORT_KEYS = (
    "created_at",
    "updated_at",
    "started_at",
    "ended_at",
    "name",
    "run_name",
    "status",
    "priority",
    "progress",
)


class ExperimentQuery(LabModel):
    """Filters and paging for listing experiments. Every filter is optional."""

    statuses: list[ExperimentStatus] = Field(default_factory=list)
    campaign_id: str | None = None
    owner: str | None = None
    text: str | None = Field(default=None, max_length=MAX_NAME)
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(default=10, ge=0, le=10_000)
    offset: int = Field(default=0, ge=0)
    deleted: bool = False
    sort: str = Field(
        default="-created_at",
        description="A SORT_KEYS name or results.<name>, metrics.<name>, parameters.<name>; "
        "'-' first = descending",
    )
    where: list[FieldFilter] = Field(
        default_factory=list, description="Conditions on results, metrics and parameters (AND)"
    )

    @field_validator("sort")
    @classmethod
    def _sort_key(cls, value: str) -> str:
        if value.removeprefix("-") not in SORT_KEYS and parse_field_sort(value) is None:
            raise ValueError(
                f"sort: expected one of {', '.join(SORT_KEYS)}, results.<name>, "
                f"metrics.<name> or parameters.<name> (prefix '-' for descending), "
                f"got {value!r}"
            )
        return value


# --------------------------------------------------------------------------- campaigns


class ExperimentalCampaign(LabModel):
    """A group of experiments with a common goal. MADSci's shape plus a lifecycle."""

    campaign_id: str = Field(default_factory=new_ulid)
    campaign_name: Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
    campaign_description: Text | None = None
    experiment_ids: list[str] | None = Field(
        default=None,
        description="Experiments of the campaign. Always present in responses (MADSci needs it); "
        "the page asked for with experiments_number and experiments_offset.",
    )
    ownership_info: OwnershipInfo = Field(default_factory=OwnershipInfo)
    created_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
    # labledger extensions
    experiment_count: int | None = Field(
        default=None,
        description="How many experiment ids the campaign has in all (experiment_ids may be "
        "one page of them). Set in responses; ignored in requests.",
    )
    status: CampaignStatus = CampaignStatus.PLANNED
    parameters: JsonObject = Field(default_factory=dict)
    metadata: JsonObject = Field(default_factory=dict)
    updated_at: datetime = Field(default_factory=utcnow)
    version: int = 1

    @field_validator("campaign_id")
    @classmethod
    def _campaign_ulid(cls, value: str) -> str:
        if not is_ulid(value):
            raise ValueError(f"Invalid ULID {value} for field campaign_id")
        return value


def campaign_to_wire(campaign: ExperimentalCampaign) -> JsonObject:
    """The JSON object of a campaign; ``experiment_ids`` is always a list."""
    ids = list(campaign.experiment_ids or [])
    count = len(ids) if campaign.experiment_count is None else campaign.experiment_count
    return {
        "campaign_id": campaign.campaign_id,
        "campaign_name": campaign.campaign_name,
        "campaign_description": campaign.campaign_description,
        "experiment_ids": ids,
        "experiment_count": count,
        "ownership_info": campaign.ownership_info.compact(),
        "created_at": _iso(campaign.created_at),
        "ended_at": _iso(campaign.ended_at),
        "status": campaign.status.value,
        "parameters": campaign.parameters,
        "metadata": campaign.metadata,
        "updated_at": _iso(campaign.updated_at),
        "version": campaign.version,
    }


# --------------------------------------------------------------------------- events


class Event(LabModel):
    """One append-only entry of the event log."""

    event_id: int | None = None
    # bounded as the database columns are (imported events arrive from a client)
    experiment_id: str | None = Field(default=None, max_length=26)
    campaign_id: str | None = Field(default=None, max_length=26)
    type: EventType
    actor: str | None = Field(default=None, max_length=200)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str | None = Field(default=None, max_length=16)
    at: datetime = Field(default_factory=utcnow)
    data: JsonObject = Field(default_factory=dict)
