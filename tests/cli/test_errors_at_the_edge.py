"""At the edge of the CLI: a server that is down, a setting that is wrong. One line each."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from labledger_fixtures import free_port, serve_command

COMMANDS_NEEDING_A_SERVER = [
    ["campaign", "list"],
    ["campaign", "show", "01JC0000000000000000000001"],
    ["campaign", "pause", "01JC0000000000000000000001"],
    ["queue"],
    ["worker", "-c", "true", "--exit-when-empty"],
]


def _labledger(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_")}
    return subprocess.run(
        [*serve_command(), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
        env={**clean, "HOME": str(cwd), **env},
    )


@pytest.mark.parametrize("args", COMMANDS_NEEDING_A_SERVER, ids=" ".join)
def test_a_server_that_is_down_gets_one_line_naming_it(args: list[str], tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = _labledger([*args, "--server-url", url], tmp_path)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error")]
    assert errors == [
        f"Error: Cannot reach the labledger server at {url} (ConnectError: [Errno 111] "
        "Connection refused). Start it with `labledger serve`, or point --server-url "
        "(EXPERIMENT_SERVER_URL) at a running one"
    ], done.stderr
    assert "Traceback" not in done.stderr


def test_the_server_url_from_the_environment_is_the_one_named(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = _labledger(["campaign", "list"], tmp_path, EXPERIMENT_SERVER_URL=url)
    assert done.returncode == 1 and f"server at {url} " in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("EXPERIMENT_LEASE_SECONDS", "abc", "a valid number"),
        ("EXPERIMENT_MAX_BODY_BYTES", "lots", "a valid integer"),
    ],
)
@pytest.mark.parametrize("command", [["serve"], ["db", "check"]], ids=" ".join)
def test_an_invalid_setting_gets_one_line_naming_it(
    command: list[str], variable: str, value: str, expected: str, tmp_path: Path
) -> None:
    done = _labledger(command, tmp_path, **{variable: value, "EXPERIMENT_DATA_DIR": str(tmp_path)})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    name = variable.removeprefix("EXPERIMENT_").lower()
    assert lines[0].startswith(f"Error: Invalid setting {name} ({variable}) is {value!r}")
    assert expected in lines[0] and "Fix it in the environment" in lines[0]
