"""Campaigns: the routes the MADSci 0.8.1 client calls, with its ``ExperimentalCampaign`` shape."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from labledger.core.lifecycle import TERMINAL, ExperimentStatus
from labledger.core.models import ExperimentalCampaign
from labledger.core.specs import CampaignSpec
from labledger.server.deps import Actor, Claim, LabDep
from labledger.server.rendering import (
    JSONBody,
    campaign_json,
    events_json,
    json_response,
)
from labledger.server.report_render import results_csv
from labledger.server.routes.experiments import MAX_EVENT_ID, MAX_OFFSET
from labledger.server.schemas import ERRORS, EventPublic

__all__ = ["router"]

router = APIRouter(tags=["campaigns"])


@router.post(
    "/campaign",
    response_model=ExperimentalCampaign,
    responses=ERRORS,
    summary="Create a campaign in MADSci's shape (the alias of POST /campaigns MADSci calls)",
)
def register_campaign(
    campaign: ExperimentalCampaign, lab: LabDep, actor: Actor, claim: Claim
) -> JSONBody:
    """MADSci's ``POST /campaign``: the campaign creation of ``POST /campaigns``, with MADSci's
    body and answer (200). The client's ``campaign_id`` is kept and ``experiment_ids`` links
    existing experiments to the campaign.
    """
    spec = CampaignSpec(
        campaign_name=campaign.campaign_name,
        campaign_description=campaign.campaign_description,
        ownership_info=campaign.ownership_info,
        parameters=campaign.parameters,
        metadata=campaign.metadata,
    )
    created = lab.campaigns.create(
        spec,
        campaign_id=campaign.campaign_id,
        experiment_ids=campaign.experiment_ids or [],
        actor=actor,
        claim=claim,
    )
    return campaign_json(created)


IdsNumber = Annotated[
    int | None,
    Query(
        ge=0,
        le=1_000_000,
        description="how many experiment ids to give per campaign (experiment_count says how "
        "many there are in all)",
    ),
]
IdsOffset = Annotated[
    int, Query(ge=0, le=MAX_OFFSET, description="experiment ids to skip before the page")
]


@router.get("/campaign/{campaign_id}", response_model=ExperimentalCampaign, responses=ERRORS)
def get_campaign(
    campaign_id: str,
    lab: LabDep,
    experiments_number: IdsNumber = None,
    experiments_offset: IdsOffset = 0,
) -> JSONBody:
    """One campaign with its experiment ids: all of them (what MADSci's client expects), or
    the page ``experiments_number`` and ``experiments_offset`` ask for."""
    return json_response(
        lab.experiments.get_campaign_wire(
            campaign_id, ids_limit=experiments_number, ids_offset=experiments_offset
        )
    )


@router.get("/campaigns", response_model=list[ExperimentalCampaign], responses=ERRORS)
def get_campaigns(
    lab: LabDep,
    number: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    experiments_number: IdsNumber = 100,
    experiments_offset: IdsOffset = 0,
) -> JSONBody:
    """Campaigns, newest first, as a bare array; each with its first 100 experiment ids
    unless ``experiments_number`` asks for another page size (``experiment_count`` is the
    total)."""
    return json_response(
        lab.experiments.list_campaigns_wire(
            number, offset, ids_limit=experiments_number, ids_offset=experiments_offset
        )
    )


@router.get("/campaign/{campaign_id}/events", response_model=list[EventPublic], responses=ERRORS)
def campaign_events(
    campaign_id: str,
    lab: LabDep,
    after: Annotated[int, Query(ge=0, le=MAX_EVENT_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> JSONBody:
    """The event log of a campaign and its experiments, oldest first."""
    return events_json(
        lab.experiments.list_events(campaign_id=campaign_id, after_id=after, limit=limit)
    )


# ---------------------------------------------------------------- campaign management (labledger)


@router.post(
    "/campaigns",
    response_model=ExperimentalCampaign,
    responses=ERRORS,
    status_code=201,
    summary="Create a campaign from a spec (a *.campaign.yaml's content), sweep included",
)
def create_campaign(spec: CampaignSpec, lab: LabDep, actor: Actor, claim: Claim) -> JSONBody:
    """Create a campaign and all the experiments its spec lists or sweeps, in one call.

    The body is the parsed content of a ``*.campaign.yaml`` file: ``campaign_name`` (or
    ``name``), ``experiment_design``, ``status`` (queued or planned), ``experiments`` and/or
    ``sweep: {grid: {param: [values]}, list: [{param: value}]}``.
    """
    campaign = lab.campaigns.create(
        spec, actor=actor, default_ownership=lab.default_ownership, claim=claim
    )
    return campaign_json(campaign, status_code=201)


def _campaign_action(name: str, summary: str) -> None:
    def handler(campaign_id: str, lab: LabDep, actor: Actor) -> JSONBody:
        method = getattr(lab.campaigns, name)
        return campaign_json(method(campaign_id, actor=actor))

    handler.__name__ = f"{name}_campaign"
    handler.__doc__ = summary
    router.add_api_route(
        f"/campaign/{{campaign_id}}/{name}",
        handler,
        methods=["POST"],
        response_model=ExperimentalCampaign,
        responses=ERRORS,
        summary=summary,
    )


for _name, _summary in (
    ("pause", "Pause a campaign: its running experiments pause and its queue is held"),
    ("resume", "Resume a paused campaign: the experiments its pause stopped continue"),
    ("cancel", "Cancel a campaign: every unfinished experiment is cancelled (terminal)"),
):
    _campaign_action(_name, _summary)


@router.get("/campaign/{campaign_id}/progress", responses=ERRORS)
def campaign_progress(campaign_id: str, lab: LabDep) -> JSONBody:
    """Counts by status, how many finished, success rate and the fraction done."""
    campaign = lab.store.campaigns.get(campaign_id)
    counts = lab.store.campaigns.status_counts(campaign_id)
    by_status = {s.value: counts.get(s.value, 0) for s in ExperimentStatus}
    total = sum(by_status.values())
    finished = sum(by_status[s.value] for s in TERMINAL)
    completed = by_status[ExperimentStatus.COMPLETED.value]
    return json_response(
        {
            "campaign_id": campaign_id,
            "status": campaign.status.value,
            "counts": by_status,
            "total": total,
            "finished": finished,
            "progress": finished / total if total else None,
            "success_rate": completed / finished if finished else None,
        }
    )


@router.get(
    "/campaign/{campaign_id}/results",
    responses={**ERRORS, 200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def campaign_results(
    campaign_id: str,
    lab: LabDep,
    fmt: Annotated[
        Literal["json", "csv"], Query(alias="format", description="json (default) or csv")
    ] = "json",
) -> Response:
    """The campaign's results as one table: each experiment's parameters and results.

    ``format=csv`` gives a spreadsheet: ``param.<name>`` and ``result.<name>`` columns.
    """
    table = lab.reports.results_table(campaign_id)
    if fmt == "csv":
        return Response(
            results_csv(table),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="results-{campaign_id}.csv"'},
        )
    return json_response(table)
