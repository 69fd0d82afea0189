"""Campaigns in the SQL database, each with the ids of its experiments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from labledger.core.idempotency import IdempotencyClaim
from labledger.core.ids import utcnow
from labledger.core.lifecycle import CampaignStatus
from labledger.core.models import Event, Experiment, ExperimentalCampaign
from labledger.errors import AlreadyExists, CampaignNotFound
from labledger.storage.engine import read_transaction, write_transaction
from labledger.storage.idempotency_sql import record_key
from labledger.storage.rows import append_events, campaign_row, experiment_row, row_to_campaign
from labledger.storage.tables import campaigns, experiments

__all__ = ["CampaignStore"]

E = experiments.c
C = campaigns.c

#: campaign field -> column, for the fields a conditional update may change
_UPDATABLE = {
    "campaign_name": "name",
    "campaign_description": "description",
    "status": "status",
    "parameters": "parameters",
    "metadata": "metadata",
    "ended_at": "ended_at",
}


class CampaignStore:
    """The :class:`~labledger.core.store.Campaigns` repository."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def insert(
        self,
        campaign: ExperimentalCampaign,
        events_: Sequence[Event],
        experiments_: Sequence[Experiment] = (),
        *,
        claim: IdempotencyClaim | None = None,
    ) -> None:
        declared = list(dict.fromkeys(campaign.experiment_ids or []))
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(insert(campaigns), [campaign_row(campaign, declared)])
                if experiments_:
                    conn.execute(insert(experiments), [experiment_row(e) for e in experiments_])
                if declared:
                    conn.execute(
                        update(experiments)
                        .where(E.id.in_(declared), E.campaign_id.is_(None))
                        .values(campaign_id=campaign.campaign_id, version=E.version + 1)
                    )
                append_events(conn, events_)
                record_key(conn, claim, "campaign", campaign.campaign_id)
        except SAIntegrityError as exc:
            raise AlreadyExists(
                f"Campaign {campaign.campaign_id} exists already", campaign_id=campaign.campaign_id
            ) from exc

    def get(
        self, campaign_id: str, *, ids_limit: int | None = None, ids_offset: int = 0
    ) -> ExperimentalCampaign:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(campaigns).where(C.id == campaign_id)).first()
            if row is None:
                raise CampaignNotFound(campaign_id)
            ids, total = _experiment_ids(conn, row, ids_limit, ids_offset)
        return row_to_campaign(row, ids, total)

    def find(
        self, limit: int, offset: int, *, ids_limit: int | None = None, ids_offset: int = 0
    ) -> list[ExperimentalCampaign]:
        stmt = select(campaigns).order_by(C.created_at.desc(), C.id.desc()).offset(offset)
        if limit:
            stmt = stmt.limit(limit)
        out = []
        with read_transaction(self.engine) as conn:
            for row in conn.execute(stmt).all():
                ids, total = _experiment_ids(conn, row, ids_limit, ids_offset)
                out.append(row_to_campaign(row, ids, total))
        return out

    def update(
        self,
        campaign_id: str,
        expected_version: int,
        changes: dict[str, Any],
        events_: Sequence[Event],
    ) -> ExperimentalCampaign | None:
        values = _changes(changes)
        values["version"] = expected_version + 1
        values["updated_at"] = utcnow()
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                update(campaigns)
                .where(C.id == campaign_id, C.version == expected_version)
                .values(**values)
            )
            if result.rowcount != 1:
                return None
            append_events(conn, events_)
        return self.get(campaign_id)

    def status_of(self, campaign_id: str) -> str:
        with read_transaction(self.engine) as conn:
            status = conn.execute(select(C.status).where(C.id == campaign_id)).scalar()
        if status is None:
            raise CampaignNotFound(campaign_id)
        return str(status)

    def status_counts(self, campaign_id: str) -> dict[str, int]:
        stmt = (
            select(E.status, func.count())
            .where(E.campaign_id == campaign_id, E.deleted_at.is_(None))
            .group_by(E.status)
        )
        with read_transaction(self.engine) as conn:
            return {status: int(n) for status, n in conn.execute(stmt)}


def _changes(changes: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in _UPDATABLE:
            raise ValueError(f"not an updatable campaign field: {key}")
        values[_UPDATABLE[key]] = value.value if isinstance(value, CampaignStatus) else value
    return values


def _experiment_ids(
    conn: Connection, row: Any, limit: int | None, offset: int
) -> tuple[list[str], int]:
    """A page of a campaign's experiment ids and how many it has in all.

    The ids are the declared ones first (those it was created with, in their order), then the
    live experiments linked to it by creation. The linked ones are read from
    ``ix_experiments_campaign_created`` alone (it holds ``deleted_at``), only as far as the
    page needs, and counted there.
    """
    declared: list[str] = list(row.declared_experiment_ids)
    linked = (E.campaign_id == row.id) & E.deleted_at.is_(None)
    # declared experiments that are linked too are listed once, among the declared
    also_linked: set[str] = set()
    for start in range(0, len(declared), 500):
        chunk = declared[start : start + 500]
        also_linked.update(conn.execute(select(E.id).where(linked, E.id.in_(chunk))).scalars())
    total = len(declared) + conn.execute(select(func.count()).where(linked)).scalar_one()
    total -= len(also_linked)
    page = declared[offset : None if limit is None else offset + limit]
    wanted = None if limit is None else limit - len(page)
    if wanted == 0:
        return page, total
    skip = max(0, offset - len(declared))
    stmt = select(E.id).where(linked).order_by(E.created_at, E.id)
    if not also_linked:
        stmt = stmt.offset(skip)
        if wanted is not None:
            stmt = stmt.limit(wanted)
        return page + list(conn.execute(stmt).scalars()), total
    if wanted is not None:
        stmt = stmt.limit(skip + wanted + len(also_linked))
    rest = [i for i in conn.execute(stmt).scalars() if i not in also_linked]
    return page + rest[skip : None if wanted is None else skip + wanted], total
