"""Campaigns: the routes the MADSci 0.8.1 client calls, with its ``ExperimentalCampaign`` shape."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from labledger.core.models import ExperimentalCampaign
from labledger.server.deps import Actor, Service
from labledger.server.rendering import JSONBody, campaign_json, campaigns_json, events_json
from labledger.server.schemas import ERRORS, EventPublic

__all__ = ["router"]

router = APIRouter(tags=["campaigns"])


@router.post("/campaign", response_model=ExperimentalCampaign, responses=ERRORS)
def register_campaign(campaign: ExperimentalCampaign, service: Service, actor: Actor) -> JSONBody:
    """Register a campaign; ``experiment_ids`` links existing experiments to it."""
    return campaign_json(service.register_campaign(campaign, actor=actor))


@router.get("/campaign/{campaign_id}", response_model=ExperimentalCampaign, responses=ERRORS)
def get_campaign(campaign_id: str, service: Service) -> JSONBody:
    """One campaign with its experiment ids."""
    return campaign_json(service.get_campaign(campaign_id))


@router.get("/campaigns", response_model=list[ExperimentalCampaign], responses=ERRORS)
def get_campaigns(
    service: Service,
    number: Annotated[int, Query(ge=1, le=10_000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONBody:
    """Campaigns, newest first, as a bare array."""
    return campaigns_json(service.list_campaigns(number, offset))


@router.get("/campaign/{campaign_id}/events", response_model=list[EventPublic], responses=ERRORS)
def campaign_events(
    campaign_id: str,
    service: Service,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> JSONBody:
    """The event log of a campaign and its experiments, oldest first."""
    return events_json(service.list_events(campaign_id=campaign_id, after_id=after, limit=limit))
