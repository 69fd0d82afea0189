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


def test_show_and_list_read_records_without_pydantic(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", run="echo running\n")
    _loaded_by(exp, "new", "--name", "one")
    _loaded_by(exp, "run")
    for args in (["show"], ["show", "1"], ["list"]):
        loaded = _loaded_by(exp, *args)
        assert _heavy(loaded, {"pydantic", "pydantic_core"}) == set(), args
    # --json prints the record through its models, which fill in what an older file lacks
    assert "pydantic" in _loaded_by(exp, "show", "--json")
