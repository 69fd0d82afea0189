"""Experiments in the SQL database: insert, read, filter, conditional update, purge."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    and_,
    delete,
    func,
    insert,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from labledger.core.idempotency import IdempotencyClaim
from labledger.core.ids import utcnow
from labledger.core.lifecycle import ExperimentStatus
from labledger.core.models import Event, Experiment, ExperimentQuery, JsonObject
from labledger.core.where import parse_field_sort
from labledger.errors import AlreadyExists, ExperimentNotFound
from labledger.storage.bulk import insert_all
from labledger.storage.engine import single_statement, write_transaction
from labledger.storage.experiment_wire import row_to_experiment_wire
from labledger.storage.idempotency_sql import key_row, record_key
from labledger.storage.metrics_sql import delete_metrics
from labledger.storage.rows import append_events, event_row, experiment_row, row_to_experiment
from labledger.storage.search_sql import text_condition
from labledger.storage.tables import (
    events,
    experiment_counts,
    experiments,
    idempotency_keys,
    milestones,
    resource_uses,
    results,
)
from labledger.storage.where_sql import field_condition, field_order_by, metric_walk

__all__ = ["ExperimentStore"]

E = experiments.c

#: columns a conditional update may change
_UPDATABLE = {
    "status",
    "run_name",
    "run_description",
    "campaign_id",
    "parameters",
    "metadata",
    "priority",
    "not_before",
    "progress",
    "attempts",
    "started_at",
    "ended_at",
    "deleted_at",
    "worker_id",
    "claimed_at",
    "lease_expires_at",
}


class ExperimentStore:
    """The :class:`~labledger.core.store.Experiments` repository."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def count(self, query: ExperimentQuery | None = None) -> int:
        q = query or ExperimentQuery()
        with single_statement(self.engine) as conn:
            if q.model_dump(include=_FILTERS) == _NO_FILTERS:
                # kept by triggers in every writing transaction (migration 0006)
                live = select(func.coalesce(func.sum(experiment_counts.c.live), 0))
                return int(conn.execute(live).scalar_one())
            text = _text(conn, q, counting=True)
            stmt = _filtered(select(func.count()).select_from(experiments), q, text)
            return int(conn.execute(stmt).scalar_one())

    def insert(
        self,
        experiment: Experiment,
        events_: Sequence[Event],
        *,
        claim: IdempotencyClaim | None = None,
    ) -> None:
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(insert(experiments), [experiment_row(experiment)])
                append_events(conn, events_)
                record_key(conn, claim, "experiment", experiment.experiment_id)
        except SAIntegrityError as exc:
            raise AlreadyExists(
                f"Experiment {experiment.experiment_id} exists already",
                experiment_id=experiment.experiment_id,
            ) from exc

    def insert_many(
        self,
        experiments_: Sequence[Experiment],
        events_: Sequence[Event],
        *,
        claims: Sequence[IdempotencyClaim | None] = (),
    ) -> None:
        """Store many new experiments, their events and their requests' Idempotency-Keys in
        one transaction. A key another request committed first fails the whole transaction,
        as any other clash does."""
        keyed = [
            (claim, e.experiment_id)
            for claim, e in zip(claims, experiments_, strict=False)
            if claim is not None and claim.resource_id is None
        ]
        insert_all(
            self.engine,
            [
                (experiments, [experiment_row(e) for e in experiments_]),
                (events, [event_row(e) for e in events_]),
                (idempotency_keys, [key_row(c, "experiment", i) for c, i in keyed]),
            ],
        )
        for claim, experiment_id in keyed:
            claim.resource_kind, claim.resource_id = "experiment", experiment_id

    def get(self, experiment_id: str, *, include_deleted: bool = False) -> Experiment:
        with single_statement(self.engine) as conn:
            row = conn.execute(select(experiments).where(E.id == experiment_id)).first()
        if row is None or (row.deleted_at is not None and not include_deleted):
            raise ExperimentNotFound(experiment_id)
        return row_to_experiment(row)

    def find(self, query: ExperimentQuery) -> list[Experiment]:
        with single_statement(self.engine) as conn:
            stmt = _list_statement(query, _text(conn, query))
            return [row_to_experiment(r) for r in conn.execute(stmt)]

    def find_wire(self, query: ExperimentQuery) -> list[JsonObject]:
        with single_statement(self.engine) as conn:
            stmt = _list_statement(query, _text(conn, query))
            return [row_to_experiment_wire(r) for r in conn.execute(stmt)]

    def update(
        self,
        experiment_id: str,
        expected_version: int,
        changes: dict[str, Any],
        events_: Sequence[Event],
    ) -> Experiment | None:
        values = _changes(changes)
        values["version"] = expected_version + 1
        values["updated_at"] = utcnow()
        stmt = (
            update(experiments)
            .where(E.id == experiment_id, E.version == expected_version)
            .values(**values)
            .returning(*experiments.c)
        )
        with write_transaction(self.engine) as conn:
            row = conn.execute(stmt).first()
            if row is None:
                return None
            append_events(conn, events_)
        return row_to_experiment(row)

    def purge(self, experiment_id: str, event: Event) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(delete(events).where(events.c.experiment_id == experiment_id))
            for table in (results, milestones, resource_uses):
                conn.execute(delete(table).where(table.c.experiment_id == experiment_id))
            delete_metrics(conn, experiment_id)
            conn.execute(delete(experiments).where(E.id == experiment_id))
            append_events(conn, [event])


def _changes(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(f"not an updatable experiment column: {sorted(unknown)}")
    values = dict(changes)
    if isinstance(values.get("status"), ExperimentStatus):
        values["status"] = values["status"].value
    return values


#: the filters of a query, and their values when nothing is filtered (the live count)
_FILTERS = {"statuses", "campaign_id", "owner", "text", "since", "until", "deleted", "where"}
_NO_FILTERS = ExperimentQuery().model_dump(include=_FILTERS)


def _text(conn: Connection, q: ExperimentQuery, *, counting: bool = False) -> Any:
    """The condition of the query's ``text`` filter (None without one)."""
    if not q.text:
        return None
    wanted = None if counting or not q.limit else q.offset + q.limit
    return text_condition(conn, q.text, wanted)


def _filtered(stmt: Select[Any], q: ExperimentQuery, text: Any) -> Select[Any]:
    conds: list[Any] = [E.deleted_at.is_not(None) if q.deleted else E.deleted_at.is_(None)]
    if q.statuses:
        conds.append(E.status.in_([s.value for s in q.statuses]))
    if q.campaign_id is not None:
        conds.append(E.campaign_id == q.campaign_id)
    if q.owner is not None:
        conds.append(E.owner == q.owner)
    if q.since is not None:
        conds.append(E.created_at >= q.since)
    if q.until is not None:
        conds.append(E.created_at < q.until)
    if text is not None:
        conds.append(text)
    conds.extend(field_condition(f) for f in q.where)
    return stmt.where(and_(*conds))


def _list_statement(q: ExperimentQuery, text: Any) -> Select[Any]:
    """The SELECT of a list: filters, order, page."""
    walk = metric_walk(select(experiments), q.where, parse_field_sort(q.sort))
    if walk is not None:
        joined, rest, order = walk
        stmt = _filtered(joined, q.model_copy(update={"where": rest}), text).order_by(*order)
        stmt = stmt.offset(q.offset)
        return stmt.limit(q.limit) if q.limit else stmt
    statuses = list(dict.fromkeys(q.statuses))
    if len(statuses) > 1 and q.limit and q.sort.removeprefix("-") == "created_at":
        if text is None and not q.where:
            # the same filters give the same statement, built once: building it took 0.8 ms
            # of the server's CPU per request (a one-status list's statement 0.14 ms)
            return _kept_status_merge(
                tuple(
                    (name, tuple(statuses) if name == "statuses" else getattr(q, name))
                    for name in _MERGE_KEY
                )
            )
        return _status_merge(q, statuses, text)
    stmt = _filtered(select(experiments), q, text).order_by(*_order_by(q.sort)).offset(q.offset)
    return stmt.limit(q.limit) if q.limit else stmt


def _status_merge(q: ExperimentQuery, statuses: list[ExperimentStatus], text: Any) -> Select[Any]:
    """A page of a list filtered by several statuses, newest or oldest first.

    A status IN (...) list cannot walk (status, created_at, id) in ORDER BY order, so SQLite
    would sort every match and the cost would grow with the table. One index walk per
    status, each cut at offset + limit, then merged, stays flat (benchmarks/scale.py).
    The walks carry only (id, created_at), then the page joins back by primary key: a
    SELECT with text or field filters is built per request, and proxies of every column
    through three levels of subqueries cost 4 ms to build, more than running the query.
    """
    walks = [
        select(
            _filtered(
                select(E.id, E.created_at),
                q.model_copy(update={"statuses": [status]}),
                text,
            )
            .order_by(*_order_by(q.sort))
            .limit(q.offset + q.limit)
            .subquery()
        )
        for status in statuses
    ]
    merged = union_all(*walks).subquery()
    return (
        select(experiments)
        .select_from(merged.join(experiments, E.id == merged.c.id))
        .order_by(*_order_by(q.sort))
        .offset(q.offset)
        .limit(q.limit)
    )


#: what a several-status list's statement depends on when it has no text or field filters:
#: every field of the query but those two, so a field added to the query is part of the key
_MERGE_KEY = tuple(name for name in ExperimentQuery.model_fields if name not in ("text", "where"))


@lru_cache(maxsize=256)
def _kept_status_merge(key: tuple[tuple[str, Any], ...]) -> Select[Any]:
    """:func:`_status_merge` of a query without text or field filters, kept by its filters
    (``_MERGE_KEY``'s values; a statement is immutable and may be run by several threads at
    once)."""
    q = ExperimentQuery.model_validate(dict(key))
    return _status_merge(q, list(q.statuses), None)


def _order_by(sort: str) -> list[Any]:
    """ORDER BY for a sort key such as ``-created_at``; ties broken by id, empty values last."""
    field = parse_field_sort(sort)
    if field is not None:
        return field_order_by(field)
    descending = sort.startswith("-")
    column = experiments.c[sort.removeprefix("-")]
    if column.key == "created_at":
        # the plain index order; created_at is never null
        return [E.created_at.desc(), E.id.desc()] if descending else [E.created_at, E.id]
    key = column.desc() if descending else column.asc()
    return [key.nulls_last(), E.id.desc() if descending else E.id]
