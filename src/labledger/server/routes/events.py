"""The event log: read it (all, or per experiment or campaign) and follow it live as SSE.

``GET /events/stream`` sends each event as one Server-Sent Event whose ``id`` is the event id,
``event`` its type and ``data`` its JSON. It polls the events table by id, so it sees events
written by any server replica, and it resumes after ``Last-Event-ID`` (or ``?after=``) when a
client reconnects, so a follower misses nothing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from labledger.core.models import Event
from labledger.errors import InvalidInput
from labledger.server.deps import LabDep
from labledger.server.rendering import JSONBody, event_wire, events_json
from labledger.server.routes.experiments import MAX_EVENT_ID
from labledger.server.schemas import ERRORS, EventPublic

__all__ = ["router"]

router = APIRouter(tags=["events"])

#: seconds between polls of the events table while following
POLL_SECONDS = 0.25
BATCH = 500


@router.get("/events", response_model=list[EventPublic], responses=ERRORS)
def list_events(
    lab: LabDep,
    after: Annotated[
        int, Query(ge=0, le=MAX_EVENT_ID, description="Only events with a larger event_id")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    experiment_id: Annotated[str | None, Query(max_length=26)] = None,
    campaign_id: Annotated[str | None, Query(max_length=26)] = None,
) -> JSONBody:
    """The event log, oldest first, optionally of one experiment or campaign.

    To follow it live, ``GET /events/stream`` (same filters, plus ``after``) answers
    Server-Sent Events: ``id`` = event_id, ``event`` = type, ``data`` = the event's JSON. The
    first message, ``ready``, carries the starting position; a reconnect with
    ``Last-Event-ID`` resumes after it.
    """
    return events_json(
        lab.experiments.list_events(
            experiment_id=experiment_id, campaign_id=campaign_id, after_id=after, limit=limit
        )
    )


def _start(after: int | None, last_event_id: str | None) -> int:
    if last_event_id:
        try:
            value = int(last_event_id)
        except ValueError:
            value = -1
        if not 0 <= value <= MAX_EVENT_ID:
            raise InvalidInput(
                f"Last-Event-ID: expected an event id (an integer from 0 to {MAX_EVENT_ID}), "
                f"got {last_event_id!r}",
                field="Last-Event-ID",
            )
        return max(value, after or 0)
    return after or 0


@router.get(
    "/events/stream",
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}}},
    summary="Follow the event log live (Server-Sent Events)",
    # An endless stream: OpenAPI cannot describe it, and schema-driven tools that read whole
    # answers would wait forever. It is documented in GET /events and docs/campaigns.md.
    include_in_schema=False,
)
async def stream_events(
    request: Request,
    lab: LabDep,
    experiment_id: Annotated[str | None, Query(max_length=26)] = None,
    campaign_id: Annotated[str | None, Query(max_length=26)] = None,
    after: Annotated[
        int | None,
        Query(ge=0, le=MAX_EVENT_ID, description="Start after this event id (default: from now)"),
    ] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> EventSourceResponse:
    """Every new event (of one experiment or campaign, if given) as it is written.

    Without ``after`` or ``Last-Event-ID`` the stream starts at the end of the log; with
    ``after=0`` it replays the whole log first. The first message, ``ready``, carries the
    starting position as its id.
    """
    if experiment_id is not None:
        await anyio.to_thread.run_sync(
            lambda: lab.store.experiments.get(experiment_id, include_deleted=True)
        )
    if campaign_id is not None:
        await anyio.to_thread.run_sync(lab.store.campaigns.get, campaign_id)
    if after is None and not last_event_id:
        position = await anyio.to_thread.run_sync(lab.events.last_id)
    else:
        position = _start(after, last_event_id)

    def read_after(event_id: int) -> list[Event]:
        return lab.events.find(
            experiment_id=experiment_id, campaign_id=campaign_id, after_id=event_id, limit=BATCH
        )

    async def generate() -> AsyncIterator[ServerSentEvent]:
        nonlocal position
        # Tell the follower where it starts, so a reconnect resumes from there (Last-Event-ID).
        yield ServerSentEvent(data=json.dumps({"after": position}), event="ready", id=str(position))
        while True:
            batch = await anyio.to_thread.run_sync(read_after, position)
            for ev in batch:
                assert ev.event_id is not None
                position = ev.event_id
                payload: dict[str, Any] = event_wire(ev)
                yield ServerSentEvent(
                    data=json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
                    event=ev.type.value,
                    id=str(ev.event_id),
                )
            if len(batch) < BATCH:
                if await request.is_disconnected():
                    return
                await asyncio.sleep(POLL_SECONDS)

    return EventSourceResponse(generate(), ping=15, headers={"Cache-Control": "no-store"})
