"""Results, milestones and resource uses in the SQL database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update

from labledger.core.idempotency import IdempotencyClaim
from labledger.core.ids import utcnow
from labledger.core.models import Event
from labledger.core.records import Milestone, ResourceUse, Result
from labledger.errors import ExperimentNotFound, LeaseLost, NotFound
from labledger.storage.engine import read_transaction, write_transaction
from labledger.storage.idempotency_sql import record_key
from labledger.storage.rows import (
    append_events,
    result_row,
    row_to_milestone,
    row_to_result,
    row_to_use,
)
from labledger.storage.tables import experiments, milestones, resource_uses, results

__all__ = ["RecordStore"]

R = results.c
M = milestones.c
U = resource_uses.c
E = experiments.c


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


class RecordStore:
    """The :class:`~labledger.core.store.Records` repository."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ------------------------------------------------------------------ results

    def put_results(
        self,
        results_: Sequence[Result],
        changes: dict[str, Any] | None,
        events_: Sequence[Event],
        *,
        worker_id: str | None = None,
        claim: IdempotencyClaim | None = None,
    ) -> list[Result]:
        if not results_:
            return []
        experiment_id = results_[0].experiment_id
        names = [r.name for r in results_]
        with write_transaction(self.engine) as conn:
            # The experiment must still exist when the results land (it may have been purged),
            # and a reporting worker must still hold it.
            _check_holder(conn, experiment_id, worker_id)
            conn.execute(delete(results).where(R.experiment_id == experiment_id, R.name.in_(names)))
            conn.execute(insert(results), [result_row(r) for r in results_])
            if changes:
                conn.execute(
                    update(experiments)
                    .where(E.id == experiment_id)
                    .values(**changes, version=E.version + 1, updated_at=utcnow())
                )
            append_events(conn, events_)
            record_key(conn, claim, "results", experiment_id)
            rows = conn.execute(
                select(results)
                .where(R.experiment_id == experiment_id, R.name.in_(names))
                .order_by(R.id)
            ).all()
        return [row_to_result(r) for r in rows]

    def results(
        self, *, experiment_id: str | None = None, campaign_id: str | None = None
    ) -> list[Result]:
        stmt = select(results)
        if experiment_id is not None:
            stmt = stmt.where(R.experiment_id == experiment_id).order_by(R.name)
        if campaign_id is not None:
            stmt = stmt.where(R.campaign_id == campaign_id).order_by(R.experiment_id, R.name)
        with read_transaction(self.engine) as conn:
            return [row_to_result(r) for r in conn.execute(stmt)]

    def result(self, experiment_id: str, name: str) -> Result:
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(results).where(R.experiment_id == experiment_id, R.name == name)
            ).first()
        if row is None:
            raise NotFound(
                f"Experiment {experiment_id} has no result named {name!r}",
                experiment_id=experiment_id,
                name=name,
            )
        return row_to_result(row)

    # ------------------------------------------------------------------ milestones

    def add_milestone(
        self,
        milestone: Milestone,
        events_: Sequence[Event],
        *,
        worker_id: str | None = None,
        claim: IdempotencyClaim | None = None,
    ) -> Milestone:
        row = {
            "experiment_id": milestone.experiment_id,
            "name": milestone.name,
            "progress": milestone.progress,
            "data": milestone.data,
            "actor": milestone.actor,
            "at": milestone.at,
        }
        with write_transaction(self.engine) as conn:
            _check_holder(conn, milestone.experiment_id, worker_id)
            new_id = conn.execute(insert(milestones).values(**row).returning(M.id)).scalar_one()
            record_key(conn, claim, "milestone", str(new_id))
            if milestone.progress is not None:
                conn.execute(
                    update(experiments)
                    .where(E.id == milestone.experiment_id)
                    .values(progress=milestone.progress, version=E.version + 1, updated_at=utcnow())
                )
            append_events(conn, events_)
        return milestone.model_copy(update={"milestone_id": int(new_id)})

    def milestones(self, experiment_id: str) -> list[Milestone]:
        stmt = select(milestones).where(M.experiment_id == experiment_id).order_by(M.id)
        with read_transaction(self.engine) as conn:
            return [row_to_milestone(r) for r in conn.execute(stmt)]

    # ------------------------------------------------------------------ resources

    def add_resource_uses(
        self, uses: Sequence[ResourceUse], events_: Sequence[Event]
    ) -> list[ResourceUse]:
        out: list[ResourceUse] = []
        with write_transaction(self.engine) as conn:
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
            append_events(conn, events_)
        return out

    def resource_uses(
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
        with read_transaction(self.engine) as conn:
            return [row_to_use(r) for r in conn.execute(stmt)]
