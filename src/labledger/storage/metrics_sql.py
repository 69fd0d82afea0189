"""Metric series over SQLAlchemy Core: summaries in ``metric_series``, points in ``metric_points``.

Appending (every step after the series' last one, the usual case) inserts the points and updates
the summary from the batch alone. Replacing or back-filling steps upserts them and recomputes the
summary from the points. Either way one transaction holds the series row, locked on PostgreSQL,
so concurrent batches of one series serialise and its summary stays exact.

Downsampling cuts a series into buckets of whole blocks (:func:`bucket_plan`) and lets the
database find each bucket's lowest and highest block extreme (a few thousand block rows for a
million-point series, never its points), answering only the kept points in step order; many
series (the compare page) share one query per block level.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from labledger.core.idempotency import IdempotencyClaim
from labledger.core.metrics import (
    LEVELS,
    Block,
    MetricPoint,
    MetricPointIn,
    MetricSeries,
    MetricSeriesPoints,
    Point,
    PointRow,
    all_levels,
    block_extremes,
    block_size,
    bucket_plan,
)
from labledger.errors import ExperimentNotFound, NotFound
from labledger.storage.engine import read_transaction, single_statement, write_transaction
from labledger.storage.idempotency_sql import record_key
from labledger.storage.tables import experiments, metric_blocks, metric_points, metric_series

__all__ = ["MetricSqlStore", "delete_metrics"]

S = metric_series.c
P = metric_points.c
K = metric_blocks.c


def _when(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _series(row: Any) -> MetricSeries:
    return MetricSeries(
        name=row.name,
        count=row.point_count,
        first_step=row.first_step,
        last_step=row.last_step,
        last_value=row.last_value,
        last_timestamp=_when(row.last_at),
        min_value=row.min_value,
        max_value=row.max_value,
    )


def delete_metrics(conn: Connection, experiment_id: str) -> None:
    """Remove an experiment's series and points (inside the caller's transaction)."""
    ids = select(S.id).where(S.experiment_id == experiment_id).scalar_subquery()
    conn.execute(metric_points.delete().where(P.series_id.in_(ids)))
    conn.execute(metric_blocks.delete().where(K.series_id.in_(ids)))
    conn.execute(metric_series.delete().where(S.experiment_id == experiment_id))


#: a block's extremes folded into the stored block (every SET reads the stored row as it was)
_MERGE_BLOCKS = (
    "INSERT INTO metric_blocks (series_id, level, block, count, lo_step, lo_value, lo_at, "
    "hi_step, hi_value, hi_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (series_id, level, block) DO UPDATE SET "
    "count = metric_blocks.count + excluded.count, "
    "lo_step = CASE WHEN excluded.lo_value < metric_blocks.lo_value "
    "THEN excluded.lo_step ELSE metric_blocks.lo_step END, "
    "lo_at = CASE WHEN excluded.lo_value < metric_blocks.lo_value "
    "THEN excluded.lo_at ELSE metric_blocks.lo_at END, "
    "lo_value = CASE WHEN excluded.lo_value < metric_blocks.lo_value "
    "THEN excluded.lo_value ELSE metric_blocks.lo_value END, "
    "hi_step = CASE WHEN excluded.hi_value > metric_blocks.hi_value "
    "THEN excluded.hi_step ELSE metric_blocks.hi_step END, "
    "hi_at = CASE WHEN excluded.hi_value > metric_blocks.hi_value "
    "THEN excluded.hi_at ELSE metric_blocks.hi_at END, "
    "hi_value = CASE WHEN excluded.hi_value > metric_blocks.hi_value "
    "THEN excluded.hi_value ELSE metric_blocks.hi_value END"
)


def _block_row(series_id: int, level: int, number: int, block: Block) -> dict[str, Any]:
    return {
        "series_id": series_id,
        "level": level,
        "block": number,
        "count": block.count,
        "lo_step": block.low.step,
        "lo_value": block.low.value,
        "lo_at": block.low.at,
        "hi_step": block.high.step,
        "hi_value": block.high.value,
        "hi_at": block.high.at,
    }


def _extremes_sql(level: int, series: int, postgres: bool) -> str:
    """The query giving, for ``series`` series (parameters: id, origin, width each), every
    bucket's lowest and highest point as rows ``(step, value, at, series id)`` ordered by series
    and step (a point both lowest and highest once): from the blocks of ``level``, or from the
    points themselves at level 0. The database aggregates and orders; only kept points travel
    (SQLite: the row of ``min()``/``max()``; PostgreSQL: DISTINCT ON). ``CROSS JOIN`` keeps
    SQLite reading each series' range of the table (its planner may otherwise scan it all)."""
    mark = "%s" if postgres else "?"
    row = f"(CAST({mark} AS BIGINT), CAST({mark} AS BIGINT), CAST({mark} AS BIGINT))"
    parts = [f"WITH w(sid, origin, width) AS (VALUES {', '.join([row] * series)})"]
    for side, highest in (("lo", False), ("hi", True)):
        if level:
            start = f"k.block * {block_size(level)}"
            step, value, at = f"k.{side}_step", f"k.{side}_value", f"k.{side}_at"
            source = f"w CROSS JOIN metric_blocks k WHERE k.series_id = w.sid AND k.level = {level}"
        else:
            start = step = "k.step"
            value, at = "k.value", "k.at"
            source = "w CROSS JOIN metric_points k WHERE k.series_id = w.sid"
        bucket = f"({start} - w.origin) / w.width"
        if postgres:
            order = "DESC" if highest else "ASC"
            query = (
                f"SELECT DISTINCT ON (k.series_id, {bucket}) k.series_id AS sid, {step} AS step, "
                f"{value} AS value, {at} AS at FROM {source} "
                f"ORDER BY k.series_id, {bucket}, {value} {order}, {step}"
            )
        else:
            pick = "max" if highest else "min"
            query = (
                f"SELECT k.series_id AS sid, {step} AS step, {pick}({value}) AS value, "
                f"{at} AS at FROM {source} GROUP BY k.series_id, {bucket}"
            )
        parts.append(f", {side} AS ({query})")
    parts.append(
        " SELECT step, value, at, sid FROM lo UNION SELECT step, value, at, sid FROM hi "
        "ORDER BY sid, step"
    )
    return "".join(parts)


def _split(rows: Sequence[Any], into: dict[int, list[PointRow]]) -> None:
    """Append rows ``(step, value, at, series id)`` ordered by series to each series' list, the
    rows themselves (a compare page reads tens of thousands: no object is built per point)."""
    for series_id, group in groupby(rows, key=itemgetter(3)):
        into[series_id].extend(group)


def _check_experiment(conn: Connection, experiment_id: str) -> None:
    live = conn.execute(
        select(experiments.c.id).where(
            experiments.c.id == experiment_id, experiments.c.deleted_at.is_(None)
        )
    ).first()
    if live is None:
        raise ExperimentNotFound(experiment_id)


class MetricSqlStore:
    """The :class:`~labledger.core.metrics.MetricStore` over one SQL database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        #: the driver's placeholder, for inserts sent to it directly
        self._mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"

    # ------------------------------------------------------------------ writing

    def add_points(
        self,
        experiment_id: str,
        points: Sequence[MetricPointIn],
        now: float,
        *,
        claim: IdempotencyClaim | None = None,
    ) -> int:
        by_name: dict[str, list[MetricPointIn]] = {}
        for point in points:
            by_name.setdefault(point["name"], []).append(point)
        with write_transaction(self.engine) as conn:
            _check_experiment(conn, experiment_id)
            series = self._lock_series(conn, experiment_id, list(by_name))
            for name, given in by_name.items():
                self._add_to_series(conn, series[name], given, now)
            record_key(conn, claim, "metrics", experiment_id)
        return len(points)

    def _lock_series(
        self, conn: Connection, experiment_id: str, names: list[str]
    ) -> dict[str, Any]:
        """The series rows of ``names``, created when new, locked until the transaction ends."""
        dialect = postgresql if self._postgres else sqlite
        new = [{"experiment_id": experiment_id, "name": n, "point_count": 0} for n in names]
        conn.execute(dialect.insert(metric_series).on_conflict_do_nothing(), new)
        stmt = select(metric_series).where(S.experiment_id == experiment_id, S.name.in_(names))
        if self._postgres:
            stmt = stmt.order_by(S.id).with_for_update()
        return {row.name: row for row in conn.execute(stmt)}

    def _add_to_series(
        self, conn: Connection, row: Any, given: list[MetricPointIn], now: float
    ) -> None:
        by_step: dict[int, Point] = {}
        next_step = 0 if row.last_step is None else row.last_step + 1
        for p in given:
            step = p.get("step")
            if step is None:
                step = next_step
            if step >= next_step:
                next_step = step + 1
            taken = p.get("timestamp")
            at = now if taken is None else taken.timestamp()
            by_step[step] = Point(step, p["value"], at)  # a step given twice: the later one wins
        appending = row.last_step is None or min(by_step) > row.last_step
        if appending:
            # straight to the driver: SQLAlchemy's per-row parameter processing cost more than
            # the insert itself for batches of thousands
            marks = ", ".join([self._mark] * 4)
            series_id = row.id  # a plain int: a result row's attribute costs a call per point
            conn.exec_driver_sql(
                f"INSERT INTO metric_points (series_id, step, value, at) VALUES ({marks})",
                [(series_id, pt.step, pt.value, pt.at) for pt in by_step.values()],
            )
            self._merge_blocks(conn, row.id, list(by_step.values()))
            values = [pt.value for pt in by_step.values()]
            last = by_step[max(by_step)]
            low, high = min(values), max(values)
            conn.execute(
                update(metric_series)
                .where(S.id == row.id)
                .values(
                    point_count=row.point_count + len(by_step),
                    first_step=row.first_step if row.first_step is not None else min(by_step),
                    last_step=last.step,
                    last_value=last.value,
                    last_at=last.at,
                    min_value=low if row.min_value is None else min(low, row.min_value),
                    max_value=high if row.max_value is None else max(high, row.max_value),
                )
            )
            return
        dialect = postgresql if self._postgres else sqlite
        upsert = dialect.insert(metric_points)
        upsert = upsert.on_conflict_do_update(
            index_elements=[P.series_id, P.step],
            set_={"value": upsert.excluded.value, "at": upsert.excluded.at},
            # the same value again is a retry: the point keeps its first timestamp
            where=upsert.excluded.value != P.value,
        )
        rows = [
            {"series_id": row.id, "step": pt.step, "value": pt.value, "at": pt.at}
            for pt in by_step.values()
        ]
        conn.execute(upsert, rows)
        self._recompute(conn, row.id)
        self._rebuild_blocks(conn, row.id, list(by_step))

    def _merge_blocks(self, conn: Connection, series_id: int, points: list[Point]) -> None:
        """Fold appended points into their blocks (a block may hold earlier points)."""
        rows = [
            (
                series_id,
                level,
                number,
                block.count,
                *block.low,
                *block.high,
            )
            for level, blocks in all_levels(points).items()
            for number, block in blocks.items()
        ]
        # straight to the driver, as the points: the same statement on SQLite and PostgreSQL
        conn.exec_driver_sql(_MERGE_BLOCKS.replace("?", self._mark), rows)

    def _rebuild_blocks(self, conn: Connection, series_id: int, steps: list[int]) -> None:
        """Recompute the blocks holding ``steps`` from their points (after replacing points)."""
        for level in LEVELS:
            shift = 4 * level
            for number in sorted({step >> shift for step in steps}):
                lo, hi = number << shift, ((number + 1) << shift) - 1
                points = [
                    Point(s, v, a)
                    for s, v, a in conn.execute(
                        select(P.step, P.value, P.at)
                        .where(P.series_id == series_id, P.step.between(lo, hi))
                        .order_by(P.step)
                    )
                ]
                conn.execute(
                    metric_blocks.delete().where(
                        K.series_id == series_id, K.level == level, K.block == number
                    )
                )
                block = block_extremes(points, level)[number]
                conn.execute(insert(metric_blocks), [_block_row(series_id, level, number, block)])

    def _recompute(self, conn: Connection, series_id: int) -> None:
        summary = conn.execute(
            select(
                func.count(),
                func.min(P.step),
                func.max(P.step),
                func.min(P.value),
                func.max(P.value),
            ).where(P.series_id == series_id)
        ).one()
        count, first_step, last_step, low, high = summary
        last = conn.execute(
            select(P.value, P.at).where(P.series_id == series_id, P.step == last_step)
        ).one()
        conn.execute(
            update(metric_series)
            .where(S.id == series_id)
            .values(
                point_count=count,
                first_step=first_step,
                last_step=last_step,
                last_value=last.value,
                last_at=last.at,
                min_value=low,
                max_value=high,
            )
        )

    # ------------------------------------------------------------------ reading

    def list_series(self, experiment_id: str) -> list[MetricSeries]:
        stmt = select(metric_series).where(S.experiment_id == experiment_id).order_by(S.name)
        with read_transaction(self.engine) as conn:
            rows = conn.execute(stmt).all()
            if not rows:
                _check_experiment(conn, experiment_id)
        return [_series(r) for r in rows if r.point_count > 0]

    def last_values(self, experiment_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        if not experiment_ids:
            return out
        stmt = (
            select(S.experiment_id, S.name, S.last_value)
            .where(S.experiment_id.in_(list(experiment_ids)), S.point_count > 0)
            .order_by(S.experiment_id, S.name)
        )
        with single_statement(self.engine) as conn:
            for experiment_id, name, value in conn.execute(stmt):
                out.setdefault(experiment_id, {})[name] = value
        return out

    def read_series(self, experiment_id: str, name: str, max_points: int) -> MetricSeriesPoints:
        with read_transaction(self.engine) as conn:
            row = conn.execute(
                select(metric_series).where(S.experiment_id == experiment_id, S.name == name)
            ).first()
            if row is None or row.point_count == 0:
                raise NotFound(
                    f"Experiment {experiment_id} has no metric series named {name!r}",
                    field="name",
                )
            if row.point_count <= max_points:
                points = self._all_points(conn, [row.id])[row.id]
            else:
                points = self._downsampled(conn, [row], max_points)[row.id]
        return MetricSeriesPoints(
            **_series(row).model_dump(),
            max_points=max_points,
            downsampled=row.point_count > max_points,
            points=[
                MetricPoint(step=p[0], value=p[1], timestamp=datetime.fromtimestamp(p[2], UTC))
                for p in points
            ],
        )

    def _all_points(self, conn: Connection, series_ids: list[int]) -> dict[int, list[PointRow]]:
        """Series id -> every point of the series, as rows ``(step, value, at, series id)``."""
        out: dict[int, list[PointRow]] = {i: [] for i in series_ids}
        stmt = (
            select(P.step, P.value, P.at, P.series_id)
            .where(P.series_id.in_(series_ids))
            .order_by(P.series_id, P.step)
        )
        _split(conn.execute(stmt).all(), out)
        return out

    def read_many(
        self, experiment_ids: Sequence[str], max_points: int
    ) -> dict[str, dict[str, list[PointRow]]]:
        out: dict[str, dict[str, list[PointRow]]] = {i: {} for i in experiment_ids}
        if not experiment_ids:
            return out
        stmt = (
            select(metric_series)
            .where(S.experiment_id.in_(list(experiment_ids)), S.point_count > 0)
            .order_by(S.experiment_id, S.name)
        )
        with read_transaction(self.engine) as conn:
            rows = conn.execute(stmt).all()
            short = [r for r in rows if r.point_count <= max_points]
            long = [r for r in rows if r.point_count > max_points]
            points = self._all_points(conn, [r.id for r in short]) if short else {}
            if long:
                points.update(self._downsampled(conn, long, max_points))
        for row in rows:
            out[row.experiment_id][row.name] = points[row.id]
        return out

    def _downsampled(
        self, conn: Connection, rows: Sequence[Any], max_points: int
    ) -> dict[int, list[PointRow]]:
        """Series id -> its kept points, for series ``rows`` longer than ``max_points``: one
        query per block level in use, over all those series, then the ends added."""
        plans = {row.id: bucket_plan(row.first_step, row.last_step, max_points) for row in rows}
        by_level: dict[int, list[int]] = {}
        for series_id, plan in plans.items():
            by_level.setdefault(plan.level, []).append(series_id)
        kept: dict[int, list[PointRow]] = {row.id: [] for row in rows}
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            for level, ids in by_level.items():
                params = [v for i in ids for v in (i, plans[i].origin, plans[i].width)]
                cursor.execute(_extremes_sql(level, len(ids), self._postgres), params)
                _split(cursor.fetchall(), kept)
        finally:
            cursor.close()
        firsts = self._firsts(conn, list(kept))
        for row in rows:
            points = kept[row.id]
            if not points or points[0][0] != row.first_step:
                points.insert(0, firsts[row.id])
            if points[-1][0] != row.last_step:
                points.append(Point(row.last_step, row.last_value, row.last_at))
            if len(points) > max_points:  # only when max_points < 4: room for the ends only
                kept[row.id] = [points[0], points[-1]]
        return kept

    def _firsts(self, conn: Connection, series_ids: list[int]) -> dict[int, Point]:
        """Series id -> its first point (the last one is kept in the series row)."""
        stmt = (
            select(P.series_id, P.step, P.value, P.at)
            .join(metric_series, S.id == P.series_id)
            .where(P.series_id.in_(series_ids), P.step == S.first_step)
        )
        return {i: Point(s, v, a) for i, s, v, a in conn.execute(stmt)}
