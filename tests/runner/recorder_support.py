"""Helpers for recorder tests: real git repositories, real scripts, the real ``labledger`` CLI."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CLI = [sys.executable, "-c", "from labledger.cli.entry import main; main()"]

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.org",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def env(**extra: str) -> dict[str, str]:
    """The environment of a test process: ours plus a git identity."""
    return {**os.environ, **GIT_ENV, "EDITOR": "false", **extra}


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` and return its stdout."""
    return subprocess.run(
        ["git", *args], cwd=cwd, env=env(), check=True, capture_output=True, text=True
    ).stdout


def labledger(
    cwd: Path, *args: str, ok: bool = True, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run the labledger CLI in a real process; with ``ok`` it must exit 0."""
    result = subprocess.run(
        [*CLI, *args], cwd=cwd, env=env(**extra), capture_output=True, text=True, timeout=120
    )
    if ok and result.returncode != 0:
        raise AssertionError(
            f"labledger {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def labledger_json(cwd: Path, *args: str) -> Any:
    """Run a labledger command with ``--json`` and parse what it prints."""
    return json.loads(labledger(cwd, *args, "--json").stdout)


def start_labledger(cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start labledger in the background (for the kill and Ctrl-C tests)."""
    return subprocess.Popen(
        [*CLI, *args], cwd=cwd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def write_script(path: Path, body: str) -> None:
    """Write an executable bash script."""
    path.write_text("#!/usr/bin/env bash\nset -eu\n" + body)
    path.chmod(0o755)


def make_experiment(root: Path, *, run: str, fetch: str | None = None) -> Path:
    """A git repository holding an initialised experiment whose run.sh is ``run``."""
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    labledger(root, "init", "--name", "demo", "--description", "a test experiment")
    write_script(root / "run.sh", run)
    write_script(
        root / "fetch.sh",
        fetch
        if fetch is not None
        else 'cp -r results/. "$LABLEDGER_OUTPUTS_DIR"/ 2>/dev/null || true\n',
    )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "experiment")
    return root


def wait_for(path: Path, timeout: float = 30.0) -> None:
    """Wait until ``path`` exists."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.05)


def kill_group_of(pid_file: Path) -> None:
    """Kill the process group whose leader's pid is in ``pid_file`` (a phase left running)."""
    import signal

    with contextlib.suppress(ProcessLookupError, ValueError, FileNotFoundError):
        os.killpg(int(pid_file.read_text().strip()), signal.SIGKILL)
