"""What experiments produce and use: results, milestones and resource uses (domain models).

Results are named values (numbers, text, any JSON) or files. A file result holds the BLAKE3
digest of content kept in a content-addressed store; the record names it, never embeds it.
Milestones are named checkpoints with time and data, so a run can resume from its last one.
A resource use records a sample, consumable or instrument an experiment used.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator

from labledger.core.ids import utcnow
from labledger.core.models import LabModel

__all__ = [
    "MAX_VALUE_BYTES",
    "ErrorInfo",
    "Milestone",
    "MilestoneCreate",
    "ProgressUpdate",
    "ResourceType",
    "ResourceUse",
    "ResourceUseCreate",
    "Result",
    "ResultKind",
    "ResultName",
    "ResultValues",
    "check_result_name",
]

#: largest JSON value accepted for one value result (files have no such limit)
MAX_VALUE_BYTES = 1 << 20

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")


@functools.lru_cache(maxsize=4096)
def _usable(name: str) -> bool:
    # cached: a batch of metric points repeats a few names many times
    return _NAME.match(name) is not None


def check_result_name(name: str, *, field: str = "name") -> str:
    """``name`` if it is a usable result or milestone name, else ValueError saying why."""
    if not _usable(name):
        raise ValueError(
            f"{field}: expected 1-200 characters of letters, digits, '_', '.', '-' "
            f"starting with a letter or digit, got {name!r}"
        )
    return name


ResultName = Annotated[str, AfterValidator(check_result_name)]


class ResultKind(StrEnum):
    """What a result holds."""

    VALUE = "value"  # a JSON value (number, text, list, object)
    FILE = "file"  # a file in the content-addressed store, named by its digest


class Result(LabModel):
    """One named result of an experiment."""

    result_id: int | None = None
    experiment_id: str
    campaign_id: str | None = None
    name: str
    kind: ResultKind
    value: Any = None
    digest: str | None = Field(default=None, description="BLAKE3 hex digest of a file result.")
    size: int | None = Field(default=None, description="Size in bytes of a file result.")
    media_type: str | None = None
    filename: str | None = None
    actor: str | None = None
    created_at: datetime = Field(default_factory=utcnow)


class ResultValues(LabModel):
    """The body of ``POST /experiment/{id}/results``: values under names."""

    values: dict[str, Any] = Field(min_length=1, max_length=1000)
    worker_id: str | None = Field(
        default=None,
        max_length=200,
        description="A worker reporting: it must still hold the experiment (else 409 lease_lost).",
    )

    @field_validator("values")
    @classmethod
    def _names(cls, values: dict[str, Any]) -> dict[str, Any]:
        for name in values:
            check_result_name(name, field=f"values.{name}")
        return values


class ProgressUpdate(LabModel):
    """The body of ``POST /experiment/{id}/progress``."""

    progress: float = Field(ge=0.0, le=1.0, description="Fraction done, 0 to 1.")
    message: str | None = Field(default=None, max_length=1000)


class MilestoneCreate(LabModel):
    """The body of ``POST /experiment/{id}/milestones``: a named checkpoint with its data."""

    name: ResultName
    progress: float | None = Field(default=None, ge=0.0, le=1.0)
    data: dict[str, Any] = Field(
        default_factory=dict, description="What a resumed run needs (its state at this point)."
    )
    worker_id: str | None = Field(
        default=None,
        max_length=200,
        description="A worker reporting: it must still hold the experiment (else 409 lease_lost).",
    )


class Milestone(MilestoneCreate):
    """A stored milestone."""

    milestone_id: int | None = None
    experiment_id: str
    actor: str | None = None
    at: datetime = Field(default_factory=utcnow)


class ResourceType(StrEnum):
    """Kinds of resources an experiment uses."""

    SAMPLE = "sample"
    CONSUMABLE = "consumable"
    INSTRUMENT = "instrument"
    OTHER = "other"


class ResourceUseCreate(LabModel):
    """One resource an experiment used (MADSci resource ids are ULIDs; any id is accepted)."""

    resource_id: str = Field(min_length=1, max_length=200)
    resource_type: ResourceType = ResourceType.SAMPLE
    name: str | None = Field(default=None, max_length=1000)
    quantity: float | None = None
    unit: str | None = Field(default=None, max_length=40)
    data: dict[str, Any] = Field(default_factory=dict)


class ResourceUse(ResourceUseCreate):
    """A stored resource use."""

    use_id: int | None = None
    experiment_id: str
    campaign_id: str | None = None
    actor: str | None = None
    at: datetime = Field(default_factory=utcnow)


class ErrorInfo(LabModel):
    """Why an experiment failed: the exception's type, message and traceback."""

    type: str = Field(max_length=200)
    message: str = Field(default="", max_length=10_000)
    traceback: str | None = Field(default=None, max_length=200_000)
