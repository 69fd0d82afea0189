"""The scheduling queue in the SQL database: atomic claims and lease sweeps.

A claim is one transaction: select the next claimable experiment, update it, append its events.
On PostgreSQL the select takes a row lock with ``FOR UPDATE SKIP LOCKED``, so concurrent
claimers (any number of server replicas) skip rows another transaction is claiming. On SQLite
the write transaction starts with ``BEGIN IMMEDIATE`` (see :mod:`.engine`), so claims are
serialised by the database lock; the conditional update is kept as a second guard.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, update

from labledger.core.lifecycle import CampaignStatus, ExperimentStatus
from labledger.core.models import Event, Experiment
from labledger.storage.engine import read_transaction, write_transaction
from labledger.storage.rows import append_events, row_to_experiment
from labledger.storage.tables import campaigns, experiments

__all__ = ["QueueStore"]

E = experiments.c
C = campaigns.c

#: campaigns whose queued experiments are held (not claimable)
HELD_CAMPAIGNS = (
    CampaignStatus.PAUSED.value,
    CampaignStatus.CANCELLED.value,
    CampaignStatus.COMPLETED.value,
)


class QueueStore:
    """The :class:`~labledger.core.store.Queue` repository."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim_next(
        self,
        worker_id: str,
        now: datetime,
        lease_expires_at: datetime,
        *,
        campaign_id: str | None,
        make_events: Callable[[Experiment], list[Event]],
    ) -> Experiment | None:
        conds: list[Any] = [
            E.status == ExperimentStatus.QUEUED.value,
            E.deleted_at.is_(None),
            or_(E.not_before.is_(None), E.not_before <= now),
            or_(C.status.is_(None), C.status.not_in(HELD_CAMPAIGNS)),
        ]
        if campaign_id is not None:
            conds.append(E.campaign_id == campaign_id)
        pick = (
            select(E.id, E.version)
            .select_from(experiments.outerjoin(campaigns, C.id == E.campaign_id))
            .where(and_(*conds))
            .order_by(E.priority.desc(), E.created_at, E.id)
            .limit(1)
            .with_for_update(skip_locked=True, of=experiments)
        )
        with write_transaction(self.engine) as conn:
            picked = conn.execute(pick).first()
            if picked is None:
                return None
            row = conn.execute(
                update(experiments)
                .where(
                    E.id == picked.id,
                    E.version == picked.version,
                    E.status == ExperimentStatus.QUEUED.value,
                )
                .values(
                    status=ExperimentStatus.IN_PROGRESS.value,
                    worker_id=worker_id,
                    claimed_at=now,
                    lease_expires_at=lease_expires_at,
                    attempts=E.attempts + 1,
                    started_at=func.coalesce(E.started_at, now),
                    version=E.version + 1,
                    updated_at=now,
                )
                .returning(*experiments.c)
            ).first()
            if row is None:  # pragma: no cover - the lock makes this unreachable
                return None
            claimed = row_to_experiment(row)
            append_events(conn, make_events(claimed))
        return claimed

    def expired_leases(self, now: datetime, limit: int) -> list[Experiment]:
        held = (ExperimentStatus.IN_PROGRESS.value, ExperimentStatus.PAUSED.value)
        stmt = (
            select(experiments)
            .where(E.status.in_(held), E.lease_expires_at < now, E.worker_id.is_not(None))
            .order_by(E.lease_expires_at)
            .limit(limit)
        )
        with read_transaction(self.engine) as conn:
            return [row_to_experiment(r) for r in conn.execute(stmt)]

    def find(
        self, statuses: Sequence[str], *, campaign_id: str | None, limit: int, offset: int
    ) -> list[Experiment]:
        stmt = select(experiments).where(E.status.in_(list(statuses)), E.deleted_at.is_(None))
        if campaign_id is not None:
            stmt = stmt.where(E.campaign_id == campaign_id)
        if list(statuses) == [ExperimentStatus.QUEUED.value]:
            stmt = stmt.order_by(E.priority.desc(), E.created_at, E.id)
        else:
            stmt = stmt.order_by(E.claimed_at.desc(), E.created_at.desc(), E.id)
        stmt = stmt.offset(offset)
        if limit:
            stmt = stmt.limit(limit)
        with read_transaction(self.engine) as conn:
            return [row_to_experiment(r) for r in conn.execute(stmt)]
