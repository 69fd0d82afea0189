"""Metric series of an experiment: post points in batches, list series, read one downsampled."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from labledger.core.idempotency import IdempotencyClaim
from labledger.core.ids import utcnow
from labledger.core.metrics import (
    DEFAULT_MAX_POINTS,
    MAX_MAX_POINTS,
    MetricBatch,
    MetricSeries,
    MetricSeriesPoints,
    MetricStore,
)
from labledger.server.deps import Claim, LabDep
from labledger.server.rendering import JSONBody, json_response
from labledger.server.schemas import ERRORS, inline_schema

__all__ = ["router"]

router = APIRouter(tags=["metrics"])


class MetricsAccepted(BaseModel):
    """The answer to a posted batch."""

    experiment_id: str
    accepted: int


def _batch(raw: bytes) -> MetricBatch:
    # validated from the raw bytes: a batch of thousands of points parses several times faster
    # than through FastAPI's JSON-then-dict path
    try:
        return MetricBatch.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def _add(
    experiment_id: str, raw: bytes, metrics: MetricStore, claim: IdempotencyClaim | None
) -> int:
    points = _batch(raw).metrics
    return metrics.add_points(experiment_id, points, utcnow().timestamp(), claim=claim)


@router.post(
    "/experiment/{experiment_id}/metrics",
    response_model=MetricsAccepted,
    responses=ERRORS,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_schema(MetricBatch)}},
        }
    },
)
async def add_metrics(experiment_id: str, request: Request, lab: LabDep, claim: Claim) -> JSONBody:
    """Add a batch of points to the experiment's metric series.

    The body is ``{"metrics": [{"name", "value", "step"?, "timestamp"?}, ...]}``. A step given
    again replaces its point, so retrying a batch with steps changes nothing. A point without a
    step goes after its series' last step (send an ``Idempotency-Key`` to retry such a batch
    safely). Only finite numbers are accepted: anything else is refused with 422 naming the
    point.
    """
    raw = await request.body()
    accepted = await anyio.to_thread.run_sync(_add, experiment_id, raw, lab.metrics, claim)
    return json_response({"experiment_id": experiment_id, "accepted": accepted})


@router.get(
    "/experiment/{experiment_id}/metrics", response_model=list[MetricSeries], responses=ERRORS
)
def list_metrics(experiment_id: str, lab: LabDep) -> JSONBody:
    """The experiment's series with their point counts and last, lowest and highest values."""
    return json_response(
        [s.model_dump(mode="json") for s in lab.metrics.list_series(experiment_id)]
    )


@router.get(
    "/experiment/{experiment_id}/metrics/{name}",
    response_model=MetricSeriesPoints,
    responses=ERRORS,
)
def read_metric(
    experiment_id: str,
    name: str,
    lab: LabDep,
    max_points: Annotated[
        int,
        Query(
            ge=2,
            le=MAX_MAX_POINTS,
            description="At most this many points: a longer series keeps its first and last "
            "point and the lowest and highest of each of equal step ranges",
        ),
    ] = DEFAULT_MAX_POINTS,
) -> JSONBody:
    """One series' points in step order, downsampled to at most ``max_points``."""
    series = lab.metrics.read_series(experiment_id, name, max_points)
    return json_response(series.model_dump(mode="json"))
