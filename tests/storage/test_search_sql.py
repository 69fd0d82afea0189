"""The ``text`` filter finds exactly the rows its condition describes, on both backends and
whichever plan (index or walk) a text gets, and the index follows every change of the text."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from labledger.core.lifecycle import ExperimentStatus
from labledger.core.models import Event, EventType, Experiment, ExperimentDesign, ExperimentQuery
from labledger.storage.engine import create_db_engine, single_statement
from labledger.storage.schema import ensure_ready
from labledger.storage.search_sql import text_condition
from labledger.storage.sql import SqlStore

BASE = datetime(2026, 1, 1, tzinfo=UTC)

#: (name, run_name, run_description) of the experiments searched
TEXTS = [
    ("Titration", "run 1", None),
    ("CALIBRATION", "Zeta", "100% pure_water"),
    ("Émulsion", "émulsion test", "ß and SS"),
    ('quote"d', 'say "hi"', "back\\slash"),
    ("name", "tail", "x"),
    ("Anneal 700", None, "a rare needle: qwxz-42"),
    *[("filler", f"filler run {i}", f"sample S{i:03d}") for i in range(60)],
]

NEEDLES = [
    "titr",
    "TITRATION",
    "ration",
    "100%",
    "0%",
    "%",
    "_",
    "e_w",
    "t_on",  # _ is not a wildcard: 'tion' must not match
    "é",
    "émul",
    "ÉMUL",  # SQLite and PostgreSQL (C collation) fold ASCII letters only
    "ss",
    '"hi"',
    'e"d',
    "back\\sl",
    "name tail",  # across two columns: no match
    "filler",
    "run",
    "run 4",
    "zz",
    "a",
    "ZETA",
    "qwxz-42",
    "QWXZ",
    "S05",
    "sample s059",
    "nothing like it",
    # letters and digits between other characters (PostgreSQL's index is asked for the middle)
    ": qwxz-",
    "% pure_",
    " run 4",
    "S059 ",
    "-42",
    "#1",
]


def _ascii_fold(value: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in value)


def _expected(needle: str) -> set[int]:
    wanted = _ascii_fold(needle)
    return {
        i
        for i, columns in enumerate(TEXTS)
        if any(c is not None and wanted in _ascii_fold(c) for c in columns)
    }


@pytest.fixture
def searched(db_url: str) -> Iterator[tuple[SqlStore, list[Experiment]]]:
    engine: Engine = create_db_engine(db_url)
    ensure_ready(engine, db_url)
    store = SqlStore(engine)
    stored = []
    for i, (name, run_name, description) in enumerate(TEXTS):
        exp = Experiment(
            status=ExperimentStatus.COMPLETED,
            experiment_design=ExperimentDesign(experiment_name=name),
            run_name=run_name,
            run_description=description,
            created_at=BASE + timedelta(seconds=i),
            updated_at=BASE,
        )
        stored.append(exp)
    store.experiments.insert_many(stored, [])
    yield store, stored
    engine.dispose()


def _found(store: SqlStore, stored: list[Experiment], needle: str) -> set[int]:
    index = {e.experiment_id: i for i, e in enumerate(stored)}
    listed = store.experiments.find(ExperimentQuery(text=needle, limit=0))
    return {index[e.experiment_id] for e in listed}


@pytest.mark.parametrize("needle", NEEDLES)
def test_text_filter_finds_exactly_the_rows_holding_the_text(
    searched: tuple[SqlStore, list[Experiment]], needle: str
) -> None:
    store, stored = searched
    expected = _expected(needle)
    assert _found(store, stored, needle) == expected
    assert store.experiments.count(ExperimentQuery(text=needle)) == len(expected)
    newest = store.experiments.find(ExperimentQuery(text=needle, limit=2))
    assert [e.experiment_id for e in newest] == [
        stored[i].experiment_id for i in sorted(expected, reverse=True)[:2]
    ]


def test_a_rare_text_is_looked_up_in_the_index_and_a_common_one_walks(
    searched: tuple[SqlStore, list[Experiment]],
) -> None:
    store, _ = searched
    with single_statement(store.engine) as conn:
        rare = str(text_condition(conn, "qwxz-42", 10).compile(conn))
        common = str(text_condition(conn, "filler", 10).compile(conn))
        short = str(text_condition(conn, "zz", 10).compile(conn))
    index = "experiments_text MATCH" if store.engine.dialect.name == "sqlite" else "coalesce"
    assert index in rare
    assert "MATCH" not in short
    if store.engine.dialect.name == "sqlite":
        assert "MATCH" not in common


def test_the_index_follows_renames_trash_and_purges(
    searched: tuple[SqlStore, list[Experiment]],
) -> None:
    store, stored = searched
    target = stored[5]  # "Anneal 700", the one row holding qwxz-42
    current = store.experiments.get(target.experiment_id)
    store.experiments.update(
        target.experiment_id,
        current.version,
        {"run_description": "renamed", "run_name": "now holds plover"},
        [],
    )
    assert _found(store, stored, "qwxz-42") == set()
    assert _found(store, stored, "PLOVER") == {5}
    current = store.experiments.get(target.experiment_id)
    store.experiments.update(target.experiment_id, current.version, {"deleted_at": BASE}, [])
    assert _found(store, stored, "plover") == set()
    purged = Event(type=EventType.DELETED, experiment_id=target.experiment_id)
    store.experiments.purge(target.experiment_id, purged)
    assert _found(store, stored, "anneal") == set()
    exp = Experiment(experiment_design=ExperimentDesign(experiment_name="plover again"))
    store.experiments.insert(exp, [])
    assert [e.experiment_id for e in store.experiments.find(ExperimentQuery(text="plover"))] == [
        exp.experiment_id
    ]


def test_the_trigram_index_is_asked_for_the_text_from_its_first_letter_or_digit_to_its_last(
    pg_url: str,
) -> None:
    # pg_trgm reads "#7" as the start of a word and asks for the long list of words starting
    # with 7; the rows are checked against the whole text all the same
    engine = create_db_engine(pg_url)
    ensure_ready(engine, pg_url)
    try:
        with single_statement(engine) as conn:
            asked = {
                needle: text_condition(conn, needle, 10).compile(conn).params
                for needle in ("#750001!", "(a_b)", "#7", "x")
            }
    finally:
        engine.dispose()
    assert asked == {
        "#750001!": {"indexed_pattern": "%750001%", "text_pattern": "%#750001!%"},
        "(a_b)": {"indexed_pattern": "%a\\_b%", "text_pattern": "%(a\\_b)%"},
        "#7": {"indexed_pattern": "%#7%", "text_pattern": "%#7%"},  # too short to cut
        "x": {"indexed_pattern": "%x%", "text_pattern": "%x%"},
    }
