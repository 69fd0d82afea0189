"""The ``text`` filter of experiment lists: a case-insensitive substring of the name, run name
or run description, found through an index where one helps.

The filter's meaning is one condition, :func:`text_matches` (``ILIKE '%text%'`` on each column;
SQLite folds ASCII letters only, PostgreSQL as its collation does). The indexes only narrow the
rows that condition is then checked on, so every plan returns exactly the same rows:

- PostgreSQL: a pg_trgm GIN index over the three columns joined. Any column containing the
  text means the joined string contains it and every part of it, so ``joined ILIKE '%part%'``
  (the text from its first letter or digit to its last) is added beside the condition, and the
  planner chooses between that index and a walk of the list's own index.
- SQLite: ``experiments_text``, an FTS5 table with the trigram tokenizer. Each three-character
  piece of the text is a phrase FTS5 folds as it folds the indexed text (a superset of
  SQLite's ASCII folding), so the rows holding all of a few pieces include every match. A
  piece found in most rows makes FTS5 slow (it steps through the whole list), and a text
  found in many rows is found sooner by walking the list's index newest first and checking
  each row. So: count each piece among the newest rows, ask FTS5 for the rows holding the
  rarest pieces, and walk instead when that finds more than the walk would read.

  The two plans cost differently: each candidate is a lookup of its row somewhere in the
  table (about 25 times the cost of a row met while walking, which reads neighbouring rows),
  and a walk for ``n`` rows out of ``N`` holding ``m`` matches reads about ``n * N / m``
  rows. Candidates win while ``25 * m < n * N / m``, that is ``m < sqrt(n * N / 25)``
  (about 630 for the latest 10 of a million); a count reads every match either way, so it
  takes up to ``N / 25`` candidates.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

from sqlalchemy import (
    ColumnClause,
    Connection,
    Engine,
    Select,
    and_,
    literal_column,
    or_,
    select,
    text,
)

from labledger.storage.tables import experiments

__all__ = ["text_condition", "text_matches"]

E = experiments.c

#: a row looked up by its rowid costs about this many rows met while walking an index
_LOOKUP_COST = 25
#: never fewer candidates than this are worth looking up
_MIN_CANDIDATES = 100
#: the pieces of the text are counted among this many of the newest rows
_SAMPLE = 1_000
#: a piece in more than this share of those rows is not asked for (FTS5 would step through it)
_COMMON = 0.1
#: at most this many pieces are counted, and this many of the rarest asked for together
_PIECES = 12
_RAREST = 3

_JOINED: ColumnClause[str] = literal_column(
    "(experiments.name || ' ' || coalesce(experiments.run_name, '') || ' ' || "
    "coalesce(experiments.run_description, ''))"
)

#: :func:`text_matches` beside the joined text the trigram index holds (asked for a part of the
#: text, :func:`_indexed_part`), on PostgreSQL: the SQL the expressions give, written out once
#: (building them took 0.1-0.25 ms of a request's CPU, for each text list and count)
_PG_CONDITION = text(
    f"({_JOINED.name} ILIKE :indexed_pattern ESCAPE '\\' AND ("
    + " OR ".join(
        f"experiments.{name} ILIKE :text_pattern ESCAPE '\\'"
        for name in ("name", "run_name", "run_description")
    )
    + "))"
)

#: whether the database behind an engine has the FTS5 table (looked up once per engine)
_HAS_FTS: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


def _pattern(needle: str) -> str:
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def text_matches(needle: str) -> Any:
    """The filter itself: ``needle`` is in the name, run name or run description."""
    pattern = _pattern(needle)
    return or_(
        E.name.ilike(pattern, escape="\\"),
        E.run_name.ilike(pattern, escape="\\"),
        E.run_description.ilike(pattern, escape="\\"),
    )


def _indexed_part(needle: str) -> str:
    """The part of ``needle`` the trigram index is asked for: without the characters other than
    letters and digits at either end, when three or more remain.

    pg_trgm reads a letter or digit next to such a character as the start or end of a word, and
    asks for the trigrams of a word's start (``'  7'``, ``' 75'`` for ``#750001``): words
    starting with ``7`` are in a good share of the rows, and reading their long list took most
    of the search (1.9 ms vs 0.5 ms for ``750001`` at 1,000,000 experiments). Any part of the
    text is in the joined text wherever the text is, so the rows found are the same."""
    alnum = [i for i, char in enumerate(needle) if char.isalnum()]
    if not alnum or alnum[-1] + 1 - alnum[0] < 3:
        return needle
    return needle[alnum[0] : alnum[-1] + 1]


def text_condition(conn: Connection, needle: str, wanted: int | None) -> Any:
    """The WHERE condition for ``text=needle``: :func:`text_matches`, narrowed by an index.

    ``wanted`` is how many rows the list reads (offset and page), None when it reads every
    match (a count, a list without a limit).
    """
    if conn.dialect.name == "postgresql":
        return _PG_CONDITION.bindparams(
            indexed_pattern=_pattern(_indexed_part(needle)), text_pattern=_pattern(needle)
        )
    exact = text_matches(needle)
    query = _fts_query(conn, needle, wanted)
    if query is None:
        return exact
    found: Select[Any] = (
        select(literal_column("rowid"))
        .select_from(text("experiments_text"))
        .where(text("experiments_text MATCH :fts_query").bindparams(fts_query=query))
    )
    return and_(literal_column("experiments.rowid").in_(found.scalar_subquery()), exact)


def _has_fts(conn: Connection) -> bool:
    engine = conn.engine
    known = _HAS_FTS.get(engine)
    if known is None:
        known = (
            conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'experiments_text'"
            ).first()
            is not None
        )
        _HAS_FTS[engine] = known
    return known


def _phrase(piece: str) -> str:
    return '"' + piece.replace('"', '""') + '"'


def _fts_query(conn: Connection, needle: str, wanted: int | None) -> str | None:
    """An FTS5 query for rows that may hold ``needle``; None when walking is the better plan."""
    if len(needle) < 3 or not _has_fts(conn):
        return None  # trigrams cannot find fewer than three characters
    pieces = list(dict.fromkeys(needle[i : i + 3] for i in range(len(needle) - 2)))
    if len(pieces) > _PIECES:
        step = len(pieces) / _PIECES
        pieces = [pieces[int(i * step)] for i in range(_PIECES)]
    newest = conn.exec_driver_sql("SELECT max(rowid) FROM experiments").scalar() or 0
    # one statement, written out: the SQLAlchemy form cost more to build than to run
    one = "(SELECT count(*) FROM experiments_text WHERE experiments_text MATCH ? AND rowid > ?)"
    params: list[Any] = []
    for piece in pieces:
        params += [_phrase(piece), newest - _SAMPLE]
    counts = conn.exec_driver_sql("SELECT " + ", ".join([one] * len(pieces)), tuple(params)).one()
    ranked = sorted(zip(counts, pieces, strict=True))
    sampled = min(_SAMPLE, newest)  # about the rows there are, in a small table
    rare = [piece for n, piece in ranked[:_RAREST] if n <= sampled * _COMMON]
    if not rare:
        return None  # every piece is common: the text is likely common too
    query = " AND ".join(_phrase(piece) for piece in rare)
    # what reading every match costs for a count; the break-even of the two plans for a page
    most = newest if wanted is None else math.isqrt(newest * wanted * _LOOKUP_COST)
    most = max(_MIN_CANDIDATES, most // _LOOKUP_COST)
    found = conn.exec_driver_sql(
        "SELECT count(*) FROM (SELECT 1 FROM experiments_text WHERE experiments_text MATCH ? "
        "LIMIT ?)",
        (query, most + 1),
    ).scalar_one()
    return query if found <= most else None
