"""The queue part of the SQL store: atomic claims, lease sweeps, status counts.

A claim is one transaction: select the next claimable experiment, update it, append its events.
On PostgreSQL the select takes a row lock with ``FOR UPDATE SKIP LOCKED``, so concurrent
claimers (any number of server replicas) skip rows another transaction is claiming. On SQLite
the write transaction starts with ``BEGIN IMMEDIATE`` (see :mod:`.engine`), so claims are
serialised by the database lock; the conditional update is kept as a second guard.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from labledger.core.lifecycle import CampaignStatus, ExperimentStatus
from labledger.core.models import Event, Experiment
from labledger.errors import CampaignNotFound
from labledger.storage.tables import campaigns, events, experiments

__all__ = ["QueueSql"]

E = experiments.c
C = campaigns.c

#: campaigns whose queued experiments are held (not claimable)
HELD_CAMPAIGNS = (
    CampaignStatus.PAUSED.value,
    CampaignStatus.CANCELLED.value,
    CampaignStatus.COMPLETED.value,
)


class QueueSql:
    """Mixed into :class:`labledger.storage.sql.SqlStore`."""

    if TYPE_CHECKING:

        def read(self) -> AbstractContextManager[Connection]: ...

        def write(self) -> AbstractContextManager[Connection]: ...

    def claim_next(
        self,
        worker_id: str,
        now: datetime,
        lease_expires_at: datetime,
        *,
        campaign_id: str | None,
        make_events: Callable[[Experiment], list[Event]],
    ) -> Experiment | None:
        from labledger.storage.sql import event_row, row_to_experiment

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
        with self.write() as conn:
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
            new_events = make_events(claimed)
            if new_events:
                conn.execute(insert(events), [event_row(e) for e in new_events])
        return claimed

    def insert_experiments(
        self, experiments_: Sequence[Experiment], events_: Sequence[Event]
    ) -> None:
        from labledger.storage.sql import _experiment_row, event_row

        with self.write() as conn:
            if experiments_:
                conn.execute(insert(experiments), [_experiment_row(e) for e in experiments_])
            if events_:
                conn.execute(insert(events), [event_row(e) for e in events_])

    def list_expired_leases(self, now: datetime, limit: int) -> list[Experiment]:
        from labledger.storage.sql import row_to_experiment

        held = (ExperimentStatus.IN_PROGRESS.value, ExperimentStatus.PAUSED.value)
        stmt = (
            select(experiments)
            .where(E.status.in_(held), E.lease_expires_at < now, E.worker_id.is_not(None))
            .order_by(E.lease_expires_at)
            .limit(limit)
        )
        with self.read() as conn:
            return [row_to_experiment(r) for r in conn.execute(stmt)]

    def list_queue(
        self, statuses: Sequence[str], *, campaign_id: str | None, limit: int, offset: int
    ) -> list[Experiment]:
        from labledger.storage.sql import row_to_experiment

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
        with self.read() as conn:
            return [row_to_experiment(r) for r in conn.execute(stmt)]

    def campaign_status_of(self, campaign_id: str) -> str:
        with self.read() as conn:
            status = conn.execute(select(C.status).where(C.id == campaign_id)).scalar()
        if status is None:
            raise CampaignNotFound(campaign_id)
        return str(status)

    def campaign_status_counts(self, campaign_id: str) -> dict[str, int]:
        stmt = (
            select(E.status, func.count())
            .where(E.campaign_id == campaign_id, E.deleted_at.is_(None))
            .group_by(E.status)
        )
        with self.read() as conn:
            return {status: int(n) for status, n in conn.execute(stmt)}

    def max_event_id(self) -> int:
        with self.read() as conn:
            return int(conn.execute(select(func.coalesce(func.max(events.c.id), 0))).scalar_one())
