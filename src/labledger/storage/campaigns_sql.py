"""Campaigns in the SQL database, each with the ids of its experiments."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    bindparam,
    case,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError as SAIntegrityError

from labledger.core.idempotency import IdempotencyClaim
from labledger.core.ids import utcnow
from labledger.core.lifecycle import CampaignStatus
from labledger.core.models import Event, Experiment, ExperimentalCampaign, JsonObject, OwnershipInfo
from labledger.errors import AlreadyExists, CampaignNotFound
from labledger.storage.engine import read_transaction, write_transaction
from labledger.storage.idempotency_sql import record_key
from labledger.storage.rows import append_events, campaign_row, experiment_row, row_to_campaign
from labledger.storage.tables import campaign_counts, campaigns, experiments

__all__ = ["CampaignStore", "row_to_campaign_wire"]

E = experiments.c
C = campaigns.c

T = TypeVar("T")
#: how a campaign is made from its row, a page of its experiment ids and how many it has
RowReader = Callable[[Any, list[str], int], T]

#: how many live experiments are linked to a campaign (kept by triggers in ``campaign_counts``),
#: read with the campaign's row (one round trip less than a query of its own)
_LINKED = (
    select(func.coalesce(func.sum(campaign_counts.c.live), 0))
    .where(campaign_counts.c.campaign_id == C.id)
    .scalar_subquery()
    .label("linked_live")
)

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
        return self._get(campaign_id, ids_limit, ids_offset, row_to_campaign)

    def get_wire(
        self, campaign_id: str, *, ids_limit: int | None = None, ids_offset: int = 0
    ) -> JsonObject:
        return self._get(campaign_id, ids_limit, ids_offset, row_to_campaign_wire)

    def find(
        self, limit: int, offset: int, *, ids_limit: int | None = None, ids_offset: int = 0
    ) -> list[ExperimentalCampaign]:
        return self._find(limit, offset, ids_limit, ids_offset, row_to_campaign)

    def find_wire(
        self, limit: int, offset: int, *, ids_limit: int | None = None, ids_offset: int = 0
    ) -> list[JsonObject]:
        # rows by position are all row_to_campaign_wire needs: the driver's own tuples will do
        return self._find(limit, offset, ids_limit, ids_offset, row_to_campaign_wire, tuples=True)

    def _get(
        self, campaign_id: str, ids_limit: int | None, ids_offset: int, make: RowReader[T]
    ) -> T:
        with read_transaction(self.engine) as conn:
            row = conn.execute(select(campaigns, _LINKED).where(C.id == campaign_id)).first()
            if row is None:
                raise CampaignNotFound(campaign_id)
            ids, total = _experiment_ids(conn, [row], ids_limit, ids_offset)[campaign_id]
        return make(row, ids, total)

    def _find(
        self,
        limit: int,
        offset: int,
        ids_limit: int | None,
        ids_offset: int,
        make: RowReader[T],
        *,
        tuples: bool = False,
    ) -> list[T]:
        rows: Sequence[Any]
        with read_transaction(self.engine) as conn:
            if conn.dialect.name == "postgresql":
                rows, pages = _page_with_linked_ids(
                    conn, limit, offset, ids_limit, ids_offset, tuples=tuples
                )
            else:
                stmt = select(campaigns, _LINKED).order_by(C.created_at.desc(), C.id.desc())
                stmt = stmt.offset(offset)
                if limit:
                    stmt = stmt.limit(limit)
                rows = conn.execute(stmt).all()
                pages = {}
            rest = [r for r in rows if r[_ID] not in pages]
            pages.update(_experiment_ids(conn, rest, ids_limit, ids_offset))
        return [make(r, *pages[r[_ID]]) for r in rows]

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


_OWNERSHIP_FIELDS = tuple(OwnershipInfo.model_fields)

# Where each column of ``campaigns`` is in the rows of ``select(campaigns, ...)``: the readers
# below index rows by position, since a Row's attribute lookup (about 0.6 us) was most of the
# time of making a campaign's JSON object (14 lookups, 100 campaigns a page).
_AT = {column.key: n for n, column in enumerate(campaigns.c)}
_ID, _NAME, _DESCRIPTION, _STATUS, _OWNERSHIP, _PARAMETERS, _METADATA = (
    _AT[key]
    for key in ("id", "name", "description", "status", "ownership", "parameters", "metadata")
)
_DECLARED, _VERSION, _CREATED, _UPDATED, _ENDED = (
    _AT[key]
    for key in ("declared_experiment_ids", "version", "created_at", "updated_at", "ended_at")
)
_LIVE = len(_AT)  # linked_live, read after the campaign's columns


def row_to_campaign_wire(row: Any, experiment_ids: list[str], experiment_count: int) -> JsonObject:
    """The JSON object of a campaign straight from its row (of ``select(campaigns, ...)``): what
    ``campaign_to_wire(row_to_campaign(row, ...))`` gives, without the two pydantic models
    (making them was a third of the server's time for a page of 100 campaigns)."""
    ownership = row[_OWNERSHIP]
    return {
        "campaign_id": row[_ID],
        "campaign_name": row[_NAME],
        "campaign_description": row[_DESCRIPTION],
        "experiment_ids": experiment_ids,
        "experiment_count": experiment_count,
        # only the known ids that are set, in the model's order (OwnershipInfo.compact)
        "ownership_info": {k: v for k in _OWNERSHIP_FIELDS if (v := ownership.get(k)) is not None}
        if ownership
        else {},
        "created_at": _iso(row[_CREATED]),
        "ended_at": _iso(row[_ENDED]),
        "status": CampaignStatus(row[_STATUS]).value,
        "parameters": row[_PARAMETERS],
        "metadata": row[_METADATA],
        "updated_at": _iso(row[_UPDATED]),
        "version": row[_VERSION],
    }


def _iso(value: datetime | None) -> str | None:
    # in UTC whatever the session's time zone (the driver's own rows are not made UTC as
    # UTCDateTime makes SQLAlchemy's)
    return None if value is None else value.astimezone(UTC).isoformat()


def _changes(changes: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in _UPDATABLE:
            raise ValueError(f"not an updatable campaign field: {key}")
        values[_UPDATABLE[key]] = value.value if isinstance(value, CampaignStatus) else value
    return values


@dataclass
class _Page:
    """A campaign's page of experiment ids while it is being read."""

    ids: list[str]
    total: int = 0
    linked: int = 0  # live linked experiments that are not declared
    skip: int = 0  # linked ids to skip before the page's
    wanted: int | None = None  # linked ids the page still needs (None: all)
    also_linked: frozenset[str] = frozenset()


def _experiment_ids(
    conn: Connection, rows: Sequence[Any], limit: int | None, offset: int
) -> dict[str, tuple[list[str], int]]:
    """A page of each campaign's experiment ids, and how many it has in all.

    The ids are the declared ones first (those it was created with, in their order), then the
    live experiments linked to it by creation. How many are linked comes with each row
    (``linked_live``: ``campaign_counts``, kept by triggers); the linked ids from
    ``ix_experiments_campaign_created`` alone (it holds ``deleted_at``), each campaign's only as
    far as its page needs.
    """
    if not rows:
        return {}
    pages: dict[str, _Page] = {}
    for row in rows:
        # by position: SQLAlchemy's rows or the driver's tuples
        declared: list[str] = list(row[_DECLARED])
        also_linked = _declared_and_linked(conn, row[_ID], declared)
        linked = int(row[_LIVE]) - len(also_linked)
        page = _Page(declared[offset : None if limit is None else offset + limit])
        page.total = len(declared) + linked
        page.linked = linked
        page.skip = max(0, offset - len(declared))
        page.wanted = None if limit is None else limit - len(page.ids)
        page.also_linked = frozenset(also_linked)
        pages[row[_ID]] = page
    pending = {cid: p for cid, p in pages.items() if p.wanted != 0 and p.linked > p.skip}
    if pending:
        _read_linked(conn, pending)
    return {cid: (p.ids, p.total) for cid, p in pages.items()}


def _declared_and_linked(conn: Connection, campaign_id: str, declared: list[str]) -> set[str]:
    """Declared ids that are linked too (they are listed once, among the declared)."""
    found: set[str] = set()
    for start in range(0, len(declared), 500):
        chunk = declared[start : start + 500]
        found.update(
            conn.execute(
                select(E.id).where(
                    E.campaign_id == campaign_id, E.deleted_at.is_(None), E.id.in_(chunk)
                )
            ).scalars()
        )
    return found


# A walk of one campaign's index: ORDER BY the whole index, so the planner walks it (a bitmap
# scan and a sort of a big campaign's rows cost twice as much)
_WALK = (
    "SELECT {e}id FROM experiments {e_} WHERE {e}campaign_id = {cid} AND {e}deleted_at IS NULL "
    "ORDER BY {e}campaign_id, {e}created_at, {e}id LIMIT {take} OFFSET {skip}"
)
# A page of ids joined into one string by the database, with how many there are: one value
# instead of a row (or an array element, quoted and parsed) per id. The aggregate reads its
# ordered subquery in order (a subquery with ORDER BY and LIMIT is not merged into the query
# above it, on either database; PostgreSQL's manual gives this form for ordering an aggregate's
# input when nothing else, such as a join, happens at the aggregate's level). An ORDER BY inside
# the aggregate would sort the rows again: 10,000 ids 1.9 -> 4.7 ms on PostgreSQL 15.
_JOINED = "SELECT {agg}(x.id, ','), count(*) FROM (" + _WALK + ") x"
_JOINED_SQLITE = _JOINED.format(agg="group_concat", e="", e_="", cid="?", take="?", skip="?")
_JOINED_PG = _JOINED.format(agg="string_agg", e="", e_="", cid="%s", take="%s", skip="%s")
# several campaigns on PostgreSQL: one statement, each campaign walked by a lateral subquery
_JOINED_PG_MANY = (
    "SELECT c.id, j.ids, j.n FROM unnest(%s::text[], %s::bigint[], %s::bigint[]) "
    "AS c(id, skip, take) CROSS JOIN LATERAL ("
    + _JOINED.format(agg="string_agg", e="y.", e_="y", cid="c.id", take="c.take", skip="c.skip")
    + ") AS j(ids, n)"
)
_ROWS_SQLITE = _WALK.format(e="", e_="", cid="?", take="?", skip="?")
_ROWS_PG = _WALK.format(e="", e_="", cid="%s", take="%s", skip="%s")


# A page of campaigns on PostgreSQL with the page of linked ids of each, in one statement: each
# campaign's walk is a lateral subquery the nested loop runs for the campaigns the page takes
# (a second statement for the ids cost a round trip and, on the server, more CPU than the
# walks: the ids, skips and limits sent as arrays, a second result read).
# The limits and offsets are written into the statement (literal_execute), not bound: with them
# bound, PostgreSQL planned the statement again at each execution (a custom plan, 1-2 ms), as a
# generic one with unknown limits looked dearer; written in, the prepared statement of each
# page size keeps its one plan (the same one). They are integers, never text.
_LINKED_PAGE = (
    select(E.id)
    .where(E.campaign_id == C.id, E.deleted_at.is_(None))
    .order_by(E.campaign_id, E.created_at, E.id)
    # none for a campaign with declared ids: _experiment_ids reads those
    .limit(
        case(
            (
                func.jsonb_array_length(C.declared_experiment_ids) == 0,
                bindparam("ids_take", type_=BigInteger, literal_execute=True),
            ),
            else_=0,
        )
    )
    .offset(bindparam("ids_skip", type_=BigInteger, literal_execute=True))
    .correlate(campaigns)
    .subquery("x")
)
_LINKED_JOINED = select(
    func.string_agg(_LINKED_PAGE.c.id, literal(",")).label("linked_ids"),
    func.count().label("linked_n"),
).lateral("j")
_PAGE_WITH_IDS = (
    select(campaigns, _LINKED, _LINKED_JOINED.c.linked_ids, _LINKED_JOINED.c.linked_n)
    .select_from(campaigns.join(_LINKED_JOINED, true()))
    .order_by(C.created_at.desc(), C.id.desc())
    .limit(bindparam("page_limit", type_=BigInteger, literal_execute=True))
    .offset(bindparam("page_offset", type_=BigInteger, literal_execute=True))
)


@lru_cache(maxsize=64)
def _page_sql(page_limit: int | None, page_offset: int, ids_take: int | None, ids_skip: int) -> str:
    """The text of ``_PAGE_WITH_IDS`` with these limits and offsets written in (integers)."""
    return str(
        _PAGE_WITH_IDS.params(
            page_limit=page_limit, page_offset=page_offset, ids_take=ids_take, ids_skip=ids_skip
        ).compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})  # type: ignore[no-untyped-call]
    )


def _page_with_linked_ids(
    conn: Connection,
    limit: int,
    offset: int,
    ids_limit: int | None,
    ids_offset: int,
    *,
    tuples: bool = False,
) -> tuple[Sequence[Any], dict[str, tuple[list[str], int]]]:
    """A page of campaigns (PostgreSQL), and the page of experiment ids of each campaign that
    declared none (its ids are its linked ones alone). A campaign with declared ids, or whose
    linked ids hold the separator, is left out of the pages: :func:`_experiment_ids` reads it.

    With ``tuples`` the rows are the driver's own (read by position alone, timestamps in the
    session's time zone): SQLAlchemy's result rows and the statement's rendering at each call
    cost about 0.8 ms of the server's CPU for a page of 100 campaigns (an eighth of it)."""
    values = {
        # written into the SQL: made integers here, whatever a caller passed
        "page_limit": int(limit) or None,  # 0: every campaign, as on SQLite
        "page_offset": int(offset),
        "ids_take": None if ids_limit is None else int(ids_limit),
        "ids_skip": int(ids_offset),
    }
    rows: Sequence[Any]
    if tuples:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(_page_sql(**values))
            rows = cursor.fetchall()
        finally:
            cursor.close()
    else:
        rows = conn.execute(_PAGE_WITH_IDS, values).all()
    pages: dict[str, tuple[list[str], int]] = {}
    for row in rows:
        # by position (as row_to_campaign_wire reads): linked_live, linked_ids, linked_n last
        *_, live, joined, count = row
        if row[_DECLARED]:
            continue
        ids = joined.split(",") if joined else []
        if len(ids) == count:
            pages[row[_ID]] = (ids, int(live))
    return rows, pages


def _read_linked(conn: Connection, pages: dict[str, _Page]) -> None:
    """Add the linked ids each page needs, each page read as one joined string through the
    driver's own cursor (SQLAlchemy's result rows cost more than the walk: 10,000 ids took
    5.5 ms as rows that way, 2.1 ms joined).

    On PostgreSQL one statement for several campaigns; on SQLite (no round trip) one short walk
    per campaign, a statement Python's sqlite3 keeps prepared. An id holding the separator
    (only an imported record can have one) shows as more parts than the count: that page is
    read again row by row."""
    postgres = conn.dialect.name == "postgresql"
    # no limit: NULL on PostgreSQL, -1 on SQLite
    walks = {cid: _walk(page, None if postgres else -1) for cid, page in pages.items()}
    found: dict[str, list[str]] = {}
    joined: dict[str, tuple[str | None, int]] = {}
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if postgres and len(walks) > 1:
            cursor.execute(
                _JOINED_PG_MANY,
                (list(walks), [s for s, _ in walks.values()], [t for _, t in walks.values()]),
            )
            joined.update((cid, (ids, n)) for cid, ids, n in cursor.fetchall())
        else:
            statement = _JOINED_PG if postgres else _JOINED_SQLITE
            for cid, (skip, take) in walks.items():
                cursor.execute(statement, (cid, take, skip))
                ((ids, n),) = cursor.fetchall()  # an aggregate: always one row
                joined[cid] = (ids, n)
        for cid, (ids, count) in joined.items():
            found[cid] = ids.split(",") if ids else []
            if len(found[cid]) != count:
                skip, take = walks[cid]
                cursor.execute(_ROWS_PG if postgres else _ROWS_SQLITE, (cid, take, skip))
                found[cid] = [linked_id for (linked_id,) in cursor.fetchall()]
    finally:
        cursor.close()
    for cid, page in pages.items():
        linked = found[cid]
        if page.also_linked:
            linked = [i for i in linked if i not in page.also_linked]
            end = None if page.wanted is None else page.skip + page.wanted
            linked = linked[page.skip : end]
        page.ids.extend(linked)


def _walk(page: _Page, no_limit: int | None) -> tuple[int, int | None]:
    """(offset, limit) of the linked experiments of a campaign its page may need."""
    if page.also_linked:
        # declared ones are left out after reading, so read from the start and a bit more
        if page.wanted is None:
            return 0, no_limit
        return 0, page.skip + page.wanted + len(page.also_linked)
    return page.skip, no_limit if page.wanted is None else page.wanted
