"""Misuse gets a clear message that says what to do next, and the right exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.recorder_support import labledger, labledger_json, make_experiment

pytestmark = pytest.mark.slow  # real labledger processes


def test_commands_outside_an_experiment_say_to_run_init(tmp_path: Path) -> None:
    result = labledger(tmp_path, "list", ok=False)
    assert result.returncode == 2
    assert "labledger init" in result.stderr


def test_the_open_run_guides_the_next_step(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", run="echo hi\n")
    no_run = labledger(exp, "run", ok=False)
    assert no_run.returncode == 1
    assert "labledger new" in no_run.stderr

    labledger(exp, "new")
    twice = labledger(exp, "new", ok=False)
    assert twice.returncode == 1
    assert "has not run yet" in twice.stderr and "labledger end" in twice.stderr

    labledger(exp, "run")
    again = labledger(exp, "run", ok=False)
    assert again.returncode == 1
    assert "has run already" in again.stderr

    assert labledger(exp, "init", ok=False).returncode == 1  # already an experiment
    bad_var = labledger(exp, "new", "--var", "no_equals_sign", ok=False)
    assert bad_var.returncode == 2 and "NAME=VALUE" in bad_var.stderr
    no_runner = labledger(exp, "new", "--runner", "run=", ok=False)  # refused by validation
    assert no_runner.returncode == 2 and "'runners.run'" in no_runner.stderr
    assert labledger_json(exp, "show")["sealed_at"] is None  # a refused `new` changes nothing
    bad_where = labledger(exp, "list", "--where", "lr>>1", ok=False)
    assert bad_where.returncode == 2 and "compares numbers" in bad_where.stderr
    missing = labledger(exp, "show", "99", ok=False)
    assert missing.returncode == 1 and "labledger list" in missing.stderr


def test_a_never_run_run_ends_cancelled_and_keeps_its_config(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", run="echo hi\n")
    labledger(exp, "new", "--hypothesis", "never tested")
    labledger(exp, "end", "-o", "changed my mind")
    shown = labledger(exp, "show", "1").stdout
    assert "cancelled" in shown
    assert "never tested" in shown and "changed my mind" in shown
    assert "run.toml" in labledger(exp, "ls", "1", "--all").stdout


@pytest.mark.parametrize(
    ("option", "limit"), [("--name", 1_000), ("--description", 100_000)], ids=["name", "text"]
)
def test_init_refuses_a_name_or_description_longer_than_the_server_takes(
    tmp_path: Path, option: str, limit: int
) -> None:
    result = labledger(tmp_path, "init", "exp", option, "x" * (limit + 1), ok=False)
    assert result.returncode == 2
    assert f"Error: {option}: expected `str` of length <= {limit}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "exp" / "labledger.toml").exists()


@pytest.mark.parametrize(
    ("table", "field", "expected"),
    [
        ("hypothesis = 3\n", "hypothesis", "expected `str`, got 3"),
        ("[variables]\nlr = [1]\n", "variables.lr", "expected a boolean, an integer"),
        ('[runners]\nrun = "run.sh"\n', "runners.fetch", "this field is required"),
    ],
    ids=["wrong-type", "bad-variable", "missing-runner"],
)
def test_a_bad_run_toml_is_one_line_naming_the_file_field_and_expectation(
    tmp_path: Path, table: str, field: str, expected: str
) -> None:
    exp = make_experiment(tmp_path / "exp", run="echo hi\n")
    labledger(exp, "new")
    run_toml = exp / "run.toml"
    if table.startswith("[runners]"):
        run_toml.write_text(table)
    else:
        run_toml.write_text(table + '[runners]\nrun = "run.sh"\nfetch = "fetch.sh"\n')
    result = labledger(exp, "run", ok=False)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"Error: {run_toml}: field '{field}': ")
    assert expected in line and line.endswith("Edit the file and try again.")
