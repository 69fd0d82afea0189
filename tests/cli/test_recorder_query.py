"""The commands that read the query index see every record written since it was last updated:
`new`, `run` and `end` leave the index to the next reader, which brings it up to date first."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.recorder_support import labledger, labledger_json, make_experiment

# drives real labledger processes: seconds
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def behind(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """An experiment whose records moved on since its index was last updated, and a copy of
    that stale index: run 2 was indexed as planned and has ended since, run 3 was never indexed.
    """
    exp = make_experiment(tmp_path_factory.mktemp("query") / "exp", run="true\n")
    labledger(exp, "new", "--var", "lr=0.1", "--hypothesis", "first")
    labledger(exp, "run")
    labledger(exp, "end", "-o", "first seen")
    labledger(exp, "new", "--var", "lr=0.5", "--hypothesis", "second")
    assert [r["status"] for r in labledger_json(exp, "list")] == ["planned", "completed"]
    index = exp / ".labledger" / "index.sqlite"
    stale = index.with_name("stale.sqlite")
    shutil.copyfile(index, stale)
    labledger(exp, "run")
    labledger(exp, "end", "-o", "second seen")
    labledger(exp, "new", "--var", "lr=0.9", "--hypothesis", "third")
    assert index.read_bytes() == stale.read_bytes()  # the writers left the index alone
    return exp, stale


def _listed(exp: Path) -> list[tuple[int, str, str]]:
    return [(r["number"], r["status"], r["observations"]) for r in labledger_json(exp, "list")]


def _listed_seen(exp: Path) -> list[int]:
    return [r["number"] for r in labledger_json(exp, "list", "--text", "seen")]


def _shown(exp: Path) -> tuple[str, str]:
    shown = labledger_json(exp, "show", "3")
    return shown["hypothesis"], labledger_json(exp, "show", "2")["observations"]


def _compared(exp: Path) -> str:
    return labledger(exp, "compare", "2", "3").stdout


def _exported(exp: Path) -> list[tuple[int, str]]:
    rows = json.loads(labledger(exp, "export", "--format", "json").stdout)
    return [(r["number"], r["observations"]) for r in rows]


@pytest.mark.parametrize(
    ("read", "check"),
    [
        (
            _listed,
            lambda got: (
                got
                == [
                    (3, "planned", ""),
                    (2, "completed", "second seen"),
                    (1, "completed", "first seen"),
                ]
            ),
        ),
        (_listed_seen, lambda got: got == [2, 1]),
        (_shown, lambda got: got == ("third", "second seen")),
        (_compared, lambda got: "lr: 0.5 -> 0.9" in got),
        (_exported, lambda got: got == [(3, ""), (2, "second seen"), (1, "first seen")]),
    ],
    ids=["list", "list-text", "show-by-number", "compare-by-number", "export"],
)
def test_a_reader_brings_the_index_up_to_date_first(
    behind: tuple[Path, Path], read: Callable[[Path], object], check: Callable[[object], bool]
) -> None:
    exp, stale = behind
    shutil.copyfile(stale, exp / ".labledger" / "index.sqlite")
    got = read(exp)
    assert check(got), got
