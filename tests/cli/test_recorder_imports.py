"""The recorder's commands import only what they need: a researcher pays their start-up on every
iteration. This checks which modules a real command loaded, not how long it took."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from runner.recorder_support import env, make_experiment

# drives real labledger processes: seconds
pytestmark = pytest.mark.slow

#: what no recorder command needs: the server, the client, databases, Rich, S3
SERVER_AND_CLIENT = {
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "httpx",
    "httpcore",
    "rich",
    "jinja2",
    "boto3",
    "botocore",
    "labledger.server",
    "labledger.client",
    "labledger.storage",
}

_DUMP = (
    "import json, sys\n"
    "from labledger.cli.main import cli\n"
    "try:\n"
    "    cli.main(sys.argv[2:], prog_name='labledger')\n"
    "finally:\n"
    "    with open(sys.argv[1], 'w') as out:\n"
    "        json.dump(sorted(sys.modules), out)\n"
)


def _loaded_by(exp: Path, *args: str) -> set[str]:
    """The modules a real ``labledger ARGS`` process had imported when it ended."""
    dump = exp.parent / "modules.json"
    proc = subprocess.run(
        [sys.executable, "-c", _DUMP, str(dump), *args],
        cwd=exp,
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(dump.read_text()))


def _heavy(modules: set[str], names: set[str]) -> set[str]:
    return {m for m in modules if any(m == n or m.startswith(n + ".") for n in names)}


def test_a_whole_run_cycle_imports_no_server_client_database_or_rich(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", run="echo running\n")
    for args in (
        ["new", "--name", "one"],
        ["run"],
        ["end", "--observations", "done"],
        ["show"],
        ["list"],
    ):
        loaded = _loaded_by(exp, *args)
        assert "labledger.cli.recorder_common" in loaded  # the command did run
        assert _heavy(loaded, SERVER_AND_CLIENT) == set(), args


#: the data-checking library of the server's models, which the recorder's records do without
PYDANTIC = {"pydantic", "pydantic_core", "labledger.core.models"}


def test_every_recorder_command_but_push_reads_and_writes_records_without_pydantic(
    tmp_path: Path,
) -> None:
    metric = 'echo "{\\"step\\": 1, \\"loss\\": 0.5}" >> "$LABLEDGER_METRICS"\n'
    exp = make_experiment(tmp_path / "exp", run="echo running > results.txt\n" + metric)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    loaded = _loaded_by(fresh, "init", "--name", "fresh")
    assert "labledger.runner.config" in loaded  # it did write its config
    assert _heavy(loaded, PYDANTIC) == set(), "init"
    # push is the one that needs them: it converts runs to the server's models
    commands = [
        ["new", "--name", "one", "--var", "lr=0.1", "--hypothesis", "h"],
        ["run"],
        ["end", "--observations", "done"],
        ["new", "--name", "two", "--var", "lr=0.2"],
        ["run"],
        ["show"],
        ["show", "1"],
        ["show", "--json"],
        ["list"],
        ["export", "--format", "csv", "-o", str(tmp_path / "runs.csv")],
        ["logs", "1"],
        ["ls", "1", "--all"],
        ["ls", "1", "--json"],
        ["compare", "1", "2"],
        ["metrics", "1"],
        ["metrics", "1", "loss"],
        ["end", "--observations", "done too"],
        ["verify"],
        ["gc"],
        ["reindex"],
        ["checkout", "1", str(tmp_path / "restored")],
        ["rerun", "1"],
        ["end", "--observations", "again"],
    ]
    for args in commands:
        loaded = _loaded_by(exp, *args)
        assert "labledger.runner.workspace" in loaded, args  # the command did run
        assert _heavy(loaded, PYDANTIC) == set(), args
