"""The SQLite query index: rebuilt from the record files, equal to the one it replaces."""

from __future__ import annotations

from pathlib import Path

import pytest

from labledger.errors import InvalidInput
from labledger.runner.index import RunQuery, parse_var_filter
from labledger.runner.session import execute_run, new_run
from labledger.runner.workspace import Workspace
from runner.recorder_support import make_experiment


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = make_experiment(
        tmp_path_factory.mktemp("index") / "exp",
        run='mkdir -p results; echo "$lr" > results/lr.txt; [ "$opt" != bad ]\n',
    )
    ws = Workspace(root)
    for lr, opt in [(0.001, "sgd"), (0.01, "adam"), (0.1, "adam"), (1, "bad")]:
        new_run(ws, hypothesis=f"try {opt}", variables={"lr": lr, "opt": opt})
        execute_run(ws, lambda _chunk: None)
    return ws


def _numbers(ws: Workspace, *where: str, **kw: object) -> list[int]:
    q = RunQuery(where=[parse_var_filter(w) for w in where], **kw)  # type: ignore[arg-type]
    return [row["number"] for row in ws.index.query(q)]


def test_reindex_rebuilds_an_index_equal_to_the_one_it_replaces(ws: Workspace) -> None:
    ws.index.sync()
    before = ws.index.dump()
    assert len(before["runs"]) == 4
    ws.index.path.unlink()
    assert ws.index.rebuild() == 4
    assert ws.index.dump() == before


def test_a_deleted_or_synced_in_record_is_picked_up_without_reindex(
    ws: Workspace, tmp_path: Path
) -> None:
    record_file = ws.record_path(ws.run_ids()[0])
    saved = tmp_path / "saved.json"
    saved.write_bytes(record_file.read_bytes())
    record_file.unlink()
    assert 1 not in _numbers(ws)
    saved.replace(record_file)  # as rsync would bring it back
    assert 1 in _numbers(ws)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (["lr>0.01"], [4, 3]),
        (["lr>=0.01"], [4, 3, 2]),
        (["lr<0.01"], [1]),
        (["lr=0.1"], [3]),
        (["lr!=0.1"], [4, 2, 1]),
        (["opt=adam"], [3, 2]),
        (["opt=adam", "lr<0.05"], [2]),
        (["opt~a"], [4, 3, 2]),
        (["missing=1"], []),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and v and isinstance(v[0], str) else None,
)
def test_variable_expressions_filter_runs(
    ws: Workspace, where: list[str], expected: list[int]
) -> None:
    assert _numbers(ws, *where) == expected


def test_status_and_text_filters(ws: Workspace) -> None:
    assert _numbers(ws, statuses=["failed"]) == [4]
    assert _numbers(ws, statuses=["completed"]) == [3, 2, 1]
    assert _numbers(ws, text="try sgd") == [1]
    assert _numbers(ws, limit=2) == [4, 3]


@pytest.mark.parametrize("text", ["lr", "lr>>1", "1lr>2", "opt>adam"])
def test_bad_variable_expressions_say_what_is_expected(ws: Workspace, text: str) -> None:
    with pytest.raises(InvalidInput, match="--where"):
        ws.index.query(RunQuery(where=[parse_var_filter(text)]))


def test_a_new_run_is_numbered_from_every_record_and_the_next_query_indexes_it(
    tmp_path: Path,
) -> None:
    ws = Workspace(make_experiment(tmp_path / "exp", run="true\n"))
    new_run(ws, hypothesis="first")
    execute_run(ws, lambda _chunk: None)
    ws.index.sync()
    indexed = ws.index.path.read_bytes()
    second = new_run(ws, hypothesis="numbered without touching the index")
    assert second.number == 2
    assert ws.index.path.read_bytes() == indexed  # writing runs leaves the index to queries
    execute_run(ws, lambda _chunk: None)  # the second run's record changed since the index
    assert new_run(ws, hypothesis="third").number == 3
    assert ws.index.path.read_bytes() == indexed
    execute_run(ws, lambda _chunk: None)
    ws.index.path.unlink()  # a lost index: the records still number the next run
    assert new_run(ws, hypothesis="fourth").number == 4
    assert _numbers(ws) == [4, 3, 2, 1]
