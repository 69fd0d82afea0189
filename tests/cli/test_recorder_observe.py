"""`labledger show` prints a record from its JSON exactly as from its models, and a damaged
record still gets the one-line message naming its file."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from labledger.cli.recorder_observe import _show_lines
from labledger.runner.workspace import Workspace
from runner.recorder_support import labledger, labledger_json, make_experiment

# drives real labledger processes: seconds
pytestmark = pytest.mark.slow

RUN = """\
mkdir -p results
echo '{"loss": 0.5, "step": 0}' >> "$LABLEDGER_METRICS"
echo '{"loss": 0.25, "step": 1}' >> "$LABLEDGER_METRICS"
echo '{"val": {"acc": 0.75}, "note": "ok"}' > results/final.json
echo "lr is $lr"
"""


@pytest.fixture
def ran(tmp_path: Path) -> tuple[Path, str]:
    """An experiment with one ended run that has variables, results, metrics and outputs."""
    exp = make_experiment(tmp_path / "exp", run=RUN)
    created = labledger_json(exp, "new", "--name", "first", "--var", "lr=0.1")
    text = (exp / "run.toml").read_text()
    (exp / "run.toml").write_text('results = ["results/final.json"]\n' + text)
    labledger(exp, "run")
    labledger(exp, "end", "--observations", "it went down")
    return exp, created["run_id"]


def test_show_prints_the_record_from_its_json_as_from_its_models(ran: tuple[Path, str]) -> None:
    exp, run_id = ran
    printed = labledger(exp, "show", run_id).stdout
    from_models = _show_lines(Workspace(exp).load(run_id).to_dict())
    assert printed.splitlines() == [click.unstyle(line) for line in from_models]
    for line in (
        "name:         first",
        "observations: it went down",
        "variables:    lr=0.1",
        "results:      val.acc=0.75, note='ok'",
        "metrics:",
        "phases:",
        "outputs:      1 files, 37 B",
    ):
        assert line in printed, line
    assert "code:         " in printed and "environment:  " in printed


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda text: text[: len(text) // 2], id="cut-short"),
        pytest.param(
            lambda text: json.dumps({**json.loads(text), "number": "one"}), id="wrong-type"
        ),
        pytest.param(
            lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "number"}),
            id="field-missing",
        ),
    ],
)
def test_show_of_a_damaged_record_says_which_file_in_one_line(
    ran: tuple[Path, str], damage: object
) -> None:
    exp, run_id = ran
    record = exp / ".labledger" / "runs" / f"{run_id}.json"
    assert callable(damage)
    record.write_text(damage(record.read_text()))
    shown = labledger(exp, "show", run_id, ok=False)
    assert shown.returncode == 1
    assert f"Run record {record} is unreadable" in shown.stderr
    assert "Traceback" not in shown.stderr
