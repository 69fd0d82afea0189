"""Experiments: MADSci 0.8.1's routes with the same JSON, plus filters, PATCH and the trash."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AfterValidator

from labledger.core.lifecycle import Action, ExperimentStatus, parse_status
from labledger.core.models import (
    SORT_KEYS,
    ExperimentPublic,
    ExperimentQuery,
    ExperimentRegistration,
    ExperimentUpdate,
)
from labledger.core.where import parse_field_sort, parse_where
from labledger.errors import InvalidInput
from labledger.server.deps import Actor, Claim, LabDep
from labledger.server.json_route import JSONBodyRoute
from labledger.server.rendering import (
    JSONBody,
    events_json,
    experiment_json,
    json_response,
)
from labledger.server.schemas import ERRORS, CountPublic, EventPublic

__all__ = ["MAX_EVENT_ID", "MAX_OFFSET", "MAX_PAGE", "experiment_query", "router"]

router = APIRouter(tags=["experiments"])

#: the most experiments one list answer carries
MAX_PAGE = 10_000
#: the largest event id a query takes (the databases' 64-bit integers)
MAX_EVENT_ID = 2**63 - 1
#: the largest offset a query takes: a list of several statuses asks each status for
#: offset + number rows, which must still fit a 64-bit integer
MAX_OFFSET = MAX_EVENT_ID - MAX_PAGE
#: the most ``where`` conditions one query takes
MAX_CONDITIONS = 20


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("expected a time with a time zone, e.g. 2026-01-01T00:00:00Z")
    return value


AwareTime = Annotated[datetime | None, AfterValidator(_aware)]


def _statuses(raw: list[str] | None) -> list[ExperimentStatus]:
    out: list[ExperimentStatus] = []
    for item in raw or []:
        out.extend(parse_status(part) for part in item.split(",") if part.strip())
    return out


async def experiment_query(
    number: Annotated[
        int,
        Query(ge=0, le=MAX_PAGE, description="How many (MADSci's name); 0 = up to the page limit"),
    ] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Skip this many (paging)")] = 0,
    status: Annotated[
        list[str] | None, Query(description="Filter by status; repeat or comma-separate")
    ] = None,
    campaign_id: Annotated[str | None, Query(max_length=26)] = None,
    owner: Annotated[str | None, Query(max_length=26, description="ownership user_id")] = None,
    text: Annotated[
        str | None, Query(max_length=1000, description="Substring of name, run name or description")
    ] = None,
    since: Annotated[
        AwareTime, Query(description="Created at or after (ISO 8601 with zone)")
    ] = None,
    until: Annotated[AwareTime, Query(description="Created before (ISO 8601 with zone)")] = None,
    sort: Annotated[
        str,
        Query(
            max_length=240,
            description="Order: created_at, updated_at, started_at, ended_at, name, run_name, "
            "status, priority, progress, results.<name>, metrics.<name> (last value) or "
            "parameters.<name>; prefix '-' for descending",
        ),
    ] = "-created_at",
    where: Annotated[
        list[str] | None,
        Query(
            description="Conditions, repeat for AND: FIELD OP VALUE with FIELD results.<name>, "
            "metrics.<name> (last value) or parameters.<name> and OP one of = != > >= < <= ~ "
            "(contains), e.g. metrics.loss<0.1",
        ),
    ] = None,
) -> ExperimentQuery:
    """The filters shared by the list, count and UI routes (``async``: no I/O, no thread hop)."""
    if since is not None and until is not None and until <= since:
        raise InvalidInput("until: must be later than since", field="until")
    if sort.removeprefix("-") not in SORT_KEYS and parse_field_sort(sort) is None:
        raise InvalidInput(
            f"sort: expected one of {', '.join(SORT_KEYS)}, results.<name>, metrics.<name> or "
            f"parameters.<name> (prefix '-' for descending), got {sort!r}",
            field="sort",
        )
    if len(where or []) > MAX_CONDITIONS:
        raise InvalidInput(f"where: at most {MAX_CONDITIONS} conditions", field="where")
    conditions = [parse_where(w) for w in where or []]
    return ExperimentQuery(
        statuses=_statuses(status),
        campaign_id=campaign_id,
        owner=owner,
        text=text,
        since=since,
        until=until,
        limit=number or MAX_PAGE,
        offset=offset,
        sort=sort,
        where=conditions,
    )


async def start_experiment(
    registration: ExperimentRegistration, lab: LabDep, actor: Actor, claim: Claim
) -> JSONBody:
    """MADSci's ``POST /experiment``: answers 200 with the new experiment once it is stored."""
    created = await lab.create_experiment(registration, actor=actor, claim=claim)
    return experiment_json(created)


# the body is validated straight from its bytes (see JSONBodyRoute): the busiest write route
router.add_api_route(
    "/experiment",
    start_experiment,
    methods=["POST"],
    response_model=ExperimentPublic,
    responses=ERRORS,
    summary="Register an experiment (started at once, or planned / queued)",
    route_class_override=JSONBodyRoute,
)


@router.get("/experiment/{experiment_id}", response_model=ExperimentPublic, responses=ERRORS)
def get_experiment(experiment_id: str, lab: LabDep) -> JSONBody:
    """One experiment by id."""
    return experiment_json(lab.experiments.get_experiment(experiment_id))


Filters = Annotated[ExperimentQuery, Depends(experiment_query)]


@router.get("/experiments", response_model=list[ExperimentPublic], responses=ERRORS)
def get_experiments(lab: LabDep, query: Filters) -> JSONBody:
    """The latest experiments, newest first, as a bare array (MADSci's shape)."""
    return json_response(lab.experiments.list_experiments_wire(query))


@router.get("/experiments/count", response_model=CountPublic, responses=ERRORS)
def count_experiments(lab: LabDep, query: Filters) -> JSONBody:
    """How many experiments match the same filters as ``GET /experiments``."""
    return json_response({"count": lab.experiments.count_experiments(query)})


def _action_route(action: Action, summary: str) -> None:
    def handler(experiment_id: str, lab: LabDep, actor: Actor) -> JSONBody:
        return experiment_json(lab.experiments.apply_action(experiment_id, action, actor=actor))

    handler.__name__ = f"{action.value}_experiment"
    handler.__doc__ = summary
    router.add_api_route(
        f"/experiment/{{experiment_id}}/{action.value}",
        handler,
        methods=["POST"],
        response_model=ExperimentPublic,
        responses=ERRORS,
        summary=summary,
    )


@router.post(
    "/experiment/{experiment_id}/end",
    response_model=ExperimentPublic,
    responses=ERRORS,
    summary="End an experiment: completed, or the terminal status given",
)
def end_experiment(
    experiment_id: str,
    lab: LabDep,
    actor: Actor,
    status: Annotated[
        str | None,
        Query(
            description="completed (default), failed or cancelled; also 'ExperimentStatus.FAILED'"
        ),
    ] = None,
) -> JSONBody:
    """MADSci's ``end``, which also honours ``?status=`` in both encodings MADSci clients send."""
    end_status = parse_status(status) if status else None
    return experiment_json(
        lab.experiments.apply_action(experiment_id, Action.END, end_status=end_status, actor=actor)
    )


for _action, _summary in (
    (Action.CONTINUE, "Continue a paused experiment (a never-started one goes back to the queue)"),
    (Action.PAUSE, "Pause an experiment"),
    (Action.CANCEL, "Cancel an experiment (terminal; sets ended_at)"),
    (Action.FAIL, "Mark an experiment failed (terminal; sets ended_at)"),
    (Action.START, "Start a planned or queued experiment now"),
    (Action.QUEUE, "Put a planned experiment in the queue"),
):
    _action_route(_action, _summary)


@router.patch("/experiment/{experiment_id}", response_model=ExperimentPublic, responses=ERRORS)
def update_experiment(
    experiment_id: str, patch: ExperimentUpdate, lab: LabDep, actor: Actor
) -> JSONBody:
    """Replace an experiment's run name, description, parameters or metadata."""
    return experiment_json(lab.experiments.update_experiment(experiment_id, patch, actor=actor))


@router.delete("/experiment/{experiment_id}", response_model=ExperimentPublic, responses=ERRORS)
def delete_experiment(experiment_id: str, lab: LabDep, actor: Actor) -> JSONBody:
    """Move an experiment to the trash (kept, with its events, until an admin purges it)."""
    return experiment_json(lab.experiments.delete_experiment(experiment_id, actor=actor))


@router.get(
    "/experiment/{experiment_id}/events", response_model=list[EventPublic], responses=ERRORS
)
def experiment_events(
    experiment_id: str,
    lab: LabDep,
    after: Annotated[
        int, Query(ge=0, le=MAX_EVENT_ID, description="Only events with a larger event_id")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
) -> JSONBody:
    """The experiment's event log, oldest first."""
    return events_json(
        lab.experiments.list_events(experiment_id=experiment_id, after_id=after, limit=limit)
    )


trash = APIRouter(tags=["trash"])


@trash.get("/trash", response_model=list[ExperimentPublic], responses=ERRORS)
def list_trash(
    lab: LabDep,
    number: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JSONBody:
    """Experiments in the trash, newest first."""
    return json_response(lab.experiments.list_trash_wire(number, offset))


@trash.post("/trash/{experiment_id}/restore", response_model=ExperimentPublic, responses=ERRORS)
def restore_experiment(experiment_id: str, lab: LabDep, actor: Actor) -> JSONBody:
    """Take an experiment back out of the trash."""
    return experiment_json(lab.experiments.restore_experiment(experiment_id, actor=actor))


@trash.delete("/trash/{experiment_id}", status_code=204, responses=ERRORS)
def purge_experiment(experiment_id: str, lab: LabDep, actor: Actor) -> Response:
    """Remove a trashed experiment, its events and the files no other record refers to (admin)."""
    lab.purge_experiment(experiment_id, actor=actor)
    return Response(status_code=204)
