"""The scheduling queue: claim, heartbeat, finish, release, and what is queued and running."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from labledger.core.lifecycle import ExperimentStatus
from labledger.core.models import ExperimentPublic, ExperimentQuery, experiment_to_wire
from labledger.core.queue import ClaimRequest, FinishRequest, HeartbeatRequest, ReleaseRequest
from labledger.server.deps import Actor, LabDep
from labledger.server.rendering import JSONBody, experiment_json, json_response
from labledger.server.schemas import ERRORS

__all__ = ["router"]

router = APIRouter(tags=["queue"])

S = ExperimentStatus


@router.post(
    "/queue/claim",
    response_model=ExperimentPublic,
    responses={**ERRORS, 204: {"description": "Nothing is claimable now"}},
)
def claim(request: ClaimRequest, lab: LabDep, actor: Actor) -> Response:
    """Claim the next queued experiment (highest priority, then oldest) for a worker.

    Answers the experiment, now ``in_progress`` with the worker's lease, or 204 when nothing
    is claimable (empty queue, not yet due, or its campaign paused).
    """
    claimed = lab.queue.claim(request, actor=actor)
    if claimed is None:
        return Response(status_code=204)
    return experiment_json(claimed)


@router.post(
    "/experiment/{experiment_id}/heartbeat", response_model=ExperimentPublic, responses=ERRORS
)
def heartbeat(experiment_id: str, request: HeartbeatRequest, lab: LabDep) -> JSONBody:
    """Renew a worker's lease. The answer's ``lifecycle_status`` says go on (in_progress),
    wait (paused) or stop (cancelled); 409 ``lease_lost`` when the worker no longer holds it."""
    return experiment_json(lab.queue.heartbeat(experiment_id, request))


@router.post(
    "/experiment/{experiment_id}/finish", response_model=ExperimentPublic, responses=ERRORS
)
def finish(experiment_id: str, request: FinishRequest, lab: LabDep, actor: Actor) -> JSONBody:
    """Record the outcome: completed, or failed with the error and traceback, or cancelled."""
    return experiment_json(lab.queue.finish(experiment_id, request, actor=actor))


@router.post(
    "/experiment/{experiment_id}/release", response_model=ExperimentPublic, responses=ERRORS
)
def release(experiment_id: str, request: ReleaseRequest, lab: LabDep, actor: Actor) -> JSONBody:
    """A worker hands an experiment back to the queue without an outcome (e.g. shutting down)."""
    return experiment_json(lab.queue.release(experiment_id, request, actor=actor))


@router.get("/queue", responses=ERRORS)
def queue(
    lab: LabDep,
    campaign_id: Annotated[str | None, Query(max_length=26)] = None,
    number: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> JSONBody:
    """What is queued (in claim order) and what is running or paused (with worker and lease).

    ``counts`` are the totals; the lists hold at most ``number`` each.
    """
    queued = lab.store.queue.find([S.QUEUED.value], campaign_id=campaign_id, limit=number, offset=0)
    running = lab.store.queue.find(
        [S.IN_PROGRESS.value, S.PAUSED.value], campaign_id=campaign_id, limit=number, offset=0
    )
    return json_response(
        {
            "queued": [experiment_to_wire(e) for e in queued],
            "running": [experiment_to_wire(e) for e in running],
            "counts": {
                "queued": lab.experiments.count_experiments(
                    ExperimentQuery(statuses=[S.QUEUED], campaign_id=campaign_id)
                ),
                "running": lab.experiments.count_experiments(
                    ExperimentQuery(statuses=[S.IN_PROGRESS, S.PAUSED], campaign_id=campaign_id)
                ),
            },
        }
    )


@router.post("/queue/sweep", responses=ERRORS)
def sweep(lab: LabDep) -> JSONBody:
    """Expire stale leases now (the server also does it every ``sweep_interval`` seconds)."""
    swept = lab.queue.sweep_expired()
    return json_response({"swept": [experiment_to_wire(e) for e in swept], "count": len(swept)})
