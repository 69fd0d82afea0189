"""Row mappers: domain records to table rows and back, and the one event appender.

Every repository of :mod:`labledger.storage` reads and writes rows through these functions, so
a column is named in one place besides :mod:`.tables`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert

from labledger.core.access import ApiToken, Scope
from labledger.core.idempotency import StoredAnswer
from labledger.core.lifecycle import CampaignStatus, ExperimentStatus
from labledger.core.models import (
    Event,
    EventType,
    Experiment,
    ExperimentalCampaign,
    ExperimentDesign,
    OwnershipInfo,
)
from labledger.core.records import Milestone, ResourceType, ResourceUse, Result, ResultKind
from labledger.core.store import StoredCursor
from labledger.storage.tables import events

__all__ = [
    "append_events",
    "campaign_row",
    "event_row",
    "experiment_row",
    "result_row",
    "row_to_answer",
    "row_to_campaign",
    "row_to_cursor",
    "row_to_event",
    "row_to_experiment",
    "row_to_milestone",
    "row_to_result",
    "row_to_token",
    "row_to_use",
]


def append_events(conn: Connection, events_: Sequence[Event]) -> None:
    """Append ``events_`` to the log inside the caller's transaction."""
    if events_:
        conn.execute(insert(events), [event_row(e) for e in events_])


# ---------------------------------------------------------------------------- experiments


def experiment_row(exp: Experiment) -> dict[str, Any]:
    """The row of an experiment."""
    design = exp.experiment_design
    return {
        "id": exp.experiment_id,
        "status": exp.status.value,
        "name": design.experiment_name if design else "",
        "run_name": exp.run_name,
        "run_description": exp.run_description,
        "campaign_id": exp.campaign_id,
        "owner": exp.ownership_info.user_id,
        "design": design.model_dump(mode="json") if design else None,
        "ownership": exp.ownership_info.compact(),
        "parameters": exp.parameters,
        "metadata": exp.metadata,
        "priority": exp.priority,
        "not_before": exp.not_before,
        "progress": exp.progress,
        "attempts": exp.attempts,
        "version": exp.version,
        "created_at": exp.created_at,
        "updated_at": exp.updated_at,
        "started_at": exp.started_at,
        "ended_at": exp.ended_at,
        "deleted_at": exp.deleted_at,
        "worker_id": exp.worker_id,
        "claimed_at": exp.claimed_at,
        "lease_expires_at": exp.lease_expires_at,
    }


def row_to_experiment(row: Any) -> Experiment:
    """An :class:`Experiment` from a row of the experiments table."""
    m = row._mapping
    return Experiment.model_construct(
        experiment_id=m["id"],
        status=ExperimentStatus(m["status"]),
        experiment_design=ExperimentDesign.model_validate(m["design"]) if m["design"] else None,
        ownership_info=OwnershipInfo.model_construct(**m["ownership"]),
        run_name=m["run_name"],
        run_description=m["run_description"],
        started_at=m["started_at"],
        ended_at=m["ended_at"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        campaign_id=m["campaign_id"],
        parameters=m["parameters"],
        metadata=m["metadata"],
        priority=m["priority"],
        not_before=m["not_before"],
        progress=m["progress"],
        attempts=m["attempts"],
        version=m["version"],
        deleted_at=m["deleted_at"],
        worker_id=m["worker_id"],
        claimed_at=m["claimed_at"],
        lease_expires_at=m["lease_expires_at"],
    )


# ---------------------------------------------------------------------------- campaigns


def campaign_row(campaign: ExperimentalCampaign, declared: list[str]) -> dict[str, Any]:
    """The row of a campaign; ``declared`` are the experiment ids it was created with."""
    return {
        "id": campaign.campaign_id,
        "name": campaign.campaign_name,
        "description": campaign.campaign_description,
        "status": campaign.status.value,
        "owner": campaign.ownership_info.user_id,
        "ownership": campaign.ownership_info.compact(),
        "parameters": campaign.parameters,
        "metadata": campaign.metadata,
        "declared_experiment_ids": declared,
        "version": campaign.version,
        "created_at": campaign.created_at,
        "updated_at": campaign.updated_at,
        "ended_at": campaign.ended_at,
    }


def row_to_campaign(
    row: Any, experiment_ids: list[str], experiment_count: int
) -> ExperimentalCampaign:
    """An :class:`ExperimentalCampaign` from its row, a page of its experiment ids and how
    many it has."""
    return ExperimentalCampaign.model_construct(
        campaign_id=row.id,
        campaign_name=row.name,
        campaign_description=row.description,
        experiment_ids=experiment_ids,
        experiment_count=experiment_count,
        ownership_info=OwnershipInfo.model_construct(**row.ownership),
        created_at=row.created_at,
        ended_at=row.ended_at,
        status=CampaignStatus(row.status),
        parameters=row.parameters,
        metadata=row.metadata,
        updated_at=row.updated_at,
        version=row.version,
    )


# ---------------------------------------------------------------------------- events


def event_row(ev: Event) -> dict[str, Any]:
    """The row of an event (its id is given by the database)."""
    return {
        "experiment_id": ev.experiment_id,
        "campaign_id": ev.campaign_id,
        "type": ev.type.value,
        "actor": ev.actor,
        "from_status": ev.from_status,
        "to_status": ev.to_status,
        "at": ev.at,
        "data": ev.data,
    }


def row_to_event(row: Any) -> Event:
    """An :class:`Event` from a row of the events table."""
    m = row._mapping
    return Event.model_construct(
        event_id=m["id"],
        experiment_id=m["experiment_id"],
        campaign_id=m["campaign_id"],
        type=EventType(m["type"]),
        actor=m["actor"],
        from_status=m["from_status"],
        to_status=m["to_status"],
        at=m["at"],
        data=m["data"],
    )


# ---------------------------------------------------------------------------- results


def result_row(r: Result) -> dict[str, Any]:
    """The row of a result (its id is given by the database)."""
    return {
        "experiment_id": r.experiment_id,
        "campaign_id": r.campaign_id,
        "name": r.name,
        "kind": r.kind.value,
        "value": r.value,
        "digest": r.digest,
        "size": r.size,
        "media_type": r.media_type,
        "filename": r.filename,
        "actor": r.actor,
        "created_at": r.created_at,
    }


def row_to_result(row: Any) -> Result:
    """A :class:`Result` from a row of the results table."""
    return Result.model_construct(
        result_id=row.id,
        experiment_id=row.experiment_id,
        campaign_id=row.campaign_id,
        name=row.name,
        kind=ResultKind(row.kind),
        value=row.value,
        digest=row.digest,
        size=row.size,
        media_type=row.media_type,
        filename=row.filename,
        actor=row.actor,
        created_at=row.created_at,
    )


def row_to_milestone(row: Any) -> Milestone:
    """A :class:`Milestone` from a row of the milestones table."""
    return Milestone.model_construct(
        milestone_id=row.id,
        experiment_id=row.experiment_id,
        name=row.name,
        progress=row.progress,
        data=row.data,
        actor=row.actor,
        at=row.at,
    )


def row_to_use(row: Any) -> ResourceUse:
    """A :class:`ResourceUse` from a row of the resource_uses table."""
    return ResourceUse.model_construct(
        use_id=row.id,
        experiment_id=row.experiment_id,
        campaign_id=row.campaign_id,
        resource_id=row.resource_id,
        resource_type=ResourceType(row.resource_type),
        name=row.name,
        quantity=row.quantity,
        unit=row.unit,
        data=row.data,
        actor=row.actor,
        at=row.at,
    )


def row_to_cursor(row: Any) -> StoredCursor:
    """A forwarding cursor from a row of the forward_cursors table."""
    return StoredCursor(
        row.target, int(row.last_event_id), row.failures, row.last_error, row.next_attempt_at
    )


# ---------------------------------------------------------------------------- access


def row_to_token(row: Any) -> ApiToken:
    """An :class:`ApiToken` from a row of the api_tokens table (or a dict of one)."""
    m = row if isinstance(row, dict) else row._mapping
    return ApiToken(
        name=m["name"],
        scope=Scope(m["scope"]),
        note=m["note"],
        created_by=m["created_by"],
        created_at=m["created_at"],
        last_used_at=m.get("last_used_at"),
        revoked_at=m.get("revoked_at"),
    )


def row_to_answer(row: Any) -> StoredAnswer:
    """A remembered idempotent answer from a row of the idempotency_keys table."""
    return StoredAnswer(
        fingerprint=row.fingerprint,
        method=row.method,
        path=row.path,
        resource_kind=row.resource_kind,
        resource_id=row.resource_id,
        status_code=row.status_code,
        response_body=row.response_body,
        created_at=row.created_at,
    )
