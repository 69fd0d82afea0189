"""Results, milestones, resource uses and forwarding cursors in the SQL store."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, delete, insert, or_, select, update

from labledger.core.ids import utcnow
from labledger.core.models import Event
from labledger.core.records import Milestone, ResourceType, ResourceUse, Result, ResultKind
from labledger.errors import ExperimentNotFound, LeaseLost, NotFound
from labledger.storage.access_sql import record_created
from labledger.storage.tables import (
    events,
    experiments,
    forward_cursors,
    milestones,
    resource_uses,
    results,
)

__all__ = ["RecordSql", "StoredCursor"]

R = results.c
M = milestones.c
U = resource_uses.c
F = forward_cursors.c
E = experiments.c


@dataclass(frozen=True)
class StoredCursor:
    """A forwarding cursor as stored."""

    target: str
    last_event_id: int
    failures: int
    last_error: str | None
    next_attempt_at: datetime | None


def _result_row(r: Result) -> dict[str, Any]:
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


def _row_to_result(row: Any) -> Result:
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


def _row_to_milestone(row: Any) -> Milestone:
    return Milestone.model_construct(
        milestone_id=row.id,
        experiment_id=row.experiment_id,
        name=row.name,
        progress=row.progress,
        data=row.data,
        actor=row.actor,
        at=row.at,
    )


def _row_to_use(row: Any) -> ResourceUse:
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


def _append(conn: Connection, events_: Sequence[Event]) -> None:
    from labledger.storage.sql import event_row

    if events_:
        conn.execute(insert(events), [event_row(e) for e in events_])


#: the states in which a worker holds an experiment it claimed
_HELD = ("in_progress", "paused")


def _check_holder(conn: Connection, experiment_id: str, worker_id: str | None) -> None:
    """Raise unless the experiment exists (and, with ``worker_id``, that worker holds it).

    The row stays locked (PostgreSQL) until the transaction ends, so the lease cannot move to
    another worker between this check and the write, and writers of one experiment's results
    take turns: two posts of one name cannot both find it free and clash on the unique index
    (the later one replaces the earlier; SQLite writers take turns anyway).
    """
    row = conn.execute(
        select(E.worker_id, E.status).where(E.id == experiment_id).with_for_update()
    ).first()
    if row is None:
        raise ExperimentNotFound(experiment_id)
    if worker_id is not None and (row.worker_id != worker_id or row.status not in _HELD):
        raise LeaseLost(experiment_id, worker_id, row.worker_id, row.status)


class RecordSql:
    """Mixed into :class:`labledger.storage.sql.SqlStore`."""

    if TYPE_CHECKING:

        def read(self) -> AbstractContextManager[Connection]: ...

        def write(self) -> AbstractContextManager[Connection]: ...

    # ------------------------------------------------------------------ results

    def put_results(
        self,
        results_: Sequence[Result],
        changes: dict[str, Any] | None,
        events_: Sequence[Event],
        *,
        worker_id: str | None = None,
    ) -> list[Result]:
        if not results_:
            return []
        experiment_id = results_[0].experiment_id
        names = [r.name for r in results_]
        with self.write() as conn:
            # The experiment must still exist when the results land (it may have been purged),
            # and a reporting worker must still hold it.
            _check_holder(conn, experiment_id, worker_id)
            conn.execute(delete(results).where(R.experiment_id == experiment_id, R.name.in_(names)))
            conn.execute(insert(results), [_result_row(r) for r in results_])
            if changes:
                conn.execute(
                    update(experiments)
                    .where(E.id == experiment_id)
                    .values(**changes, version=E.version + 1, updated_at=utcnow())
                )
            _append(conn, events_)
            record_created(conn, "results", experiment_id)
            rows = conn.execute(
                select(results)
                .where(R.experiment_id == experiment_id, R.name.in_(names))
                .order_by(R.id)
            ).all()
        return [_row_to_result(r) for r in rows]

    def list_results(
        self, *, experiment_id: str | None = None, campaign_id: str | None = None
    ) -> list[Result]:
        stmt = select(results)
        if experiment_id is not None:
            stmt = stmt.where(R.experiment_id == experiment_id).order_by(R.name)
        if campaign_id is not None:
            stmt = stmt.where(R.campaign_id == campaign_id).order_by(R.experiment_id, R.name)
        with self.read() as conn:
            return [_row_to_result(r) for r in conn.execute(stmt)]

    def get_result(self, experiment_id: str, name: str) -> Result:
        with self.read() as conn:
            row = conn.execute(
                select(results).where(R.experiment_id == experiment_id, R.name == name)
            ).first()
        if row is None:
            raise NotFound(
                f"Experiment {experiment_id} has no result named {name!r}",
                experiment_id=experiment_id,
                name=name,
            )
        return _row_to_result(row)

    # ------------------------------------------------------------------ milestones

    def add_milestone(
        self, milestone: Milestone, events_: Sequence[Event], *, worker_id: str | None = None
    ) -> Milestone:
        row = {
            "experiment_id": milestone.experiment_id,
            "name": milestone.name,
            "progress": milestone.progress,
            "data": milestone.data,
            "actor": milestone.actor,
            "at": milestone.at,
        }
        with self.write() as conn:
            _check_holder(conn, milestone.experiment_id, worker_id)
            new_id = conn.execute(insert(milestones).values(**row).returning(M.id)).scalar_one()
            record_created(conn, "milestone", str(new_id))
            if milestone.progress is not None:
                conn.execute(
                    update(experiments)
                    .where(E.id == milestone.experiment_id)
                    .values(progress=milestone.progress, version=E.version + 1, updated_at=utcnow())
                )
            _append(conn, events_)
        return milestone.model_copy(update={"milestone_id": int(new_id)})

    def list_milestones(self, experiment_id: str) -> list[Milestone]:
        stmt = select(milestones).where(M.experiment_id == experiment_id).order_by(M.id)
        with self.read() as conn:
            return [_row_to_milestone(r) for r in conn.execute(stmt)]

    # ------------------------------------------------------------------ resources

    def add_resource_uses(
        self, uses: Sequence[ResourceUse], events_: Sequence[Event]
    ) -> list[ResourceUse]:
        out: list[ResourceUse] = []
        with self.write() as conn:
            for use in uses:
                new_id = conn.execute(
                    insert(resource_uses)
                    .values(
                        experiment_id=use.experiment_id,
                        campaign_id=use.campaign_id,
                        resource_id=use.resource_id,
                        resource_type=use.resource_type.value,
                        name=use.name,
                        quantity=use.quantity,
                        unit=use.unit,
                        data=use.data,
                        actor=use.actor,
                        at=use.at,
                    )
                    .returning(U.id)
                ).scalar_one()
                out.append(use.model_copy(update={"use_id": int(new_id)}))
            _append(conn, events_)
        return out

    def list_resource_uses(
        self,
        *,
        experiment_id: str | None = None,
        resource_id: str | None = None,
        limit: int = 1000,
    ) -> list[ResourceUse]:
        stmt = select(resource_uses)
        if experiment_id is not None:
            stmt = stmt.where(U.experiment_id == experiment_id)
        if resource_id is not None:
            stmt = stmt.where(U.resource_id == resource_id)
        stmt = stmt.order_by(U.id).limit(limit)
        with self.read() as conn:
            return [_row_to_use(r) for r in conn.execute(stmt)]

    # ------------------------------------------------------------------ forwarding

    def get_forward_cursor(self, target: str) -> StoredCursor | None:
        with self.read() as conn:
            row = conn.execute(select(forward_cursors).where(F.target == target)).first()
        if row is None:
            return None
        return StoredCursor(
            row.target, int(row.last_event_id), row.failures, row.last_error, row.next_attempt_at
        )

    def claim_forward_cursor(self, target: str, now: datetime, until: datetime) -> bool:
        with self.write() as conn:
            done = conn.execute(
                update(forward_cursors)
                .where(
                    F.target == target,
                    or_(F.next_attempt_at.is_(None), F.next_attempt_at <= now),
                )
                .values(next_attempt_at=until, updated_at=utcnow())
            )
            return bool(done.rowcount == 1)

    def save_forward_cursor(
        self,
        target: str,
        last_event_id: int,
        failures: int,
        last_error: str | None,
        next_attempt_at: datetime | None,
    ) -> None:
        values = {
            "last_event_id": last_event_id,
            "failures": failures,
            "last_error": last_error,
            "next_attempt_at": next_attempt_at,
            "updated_at": utcnow(),
        }
        with self.write() as conn:
            done = conn.execute(update(forward_cursors).where(F.target == target).values(**values))
            if done.rowcount == 0:
                conn.execute(insert(forward_cursors).values(target=target, **values))
