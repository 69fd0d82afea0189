"""The ``labledger`` process: a command line collects garbage rarely and skips the walk at exit;
a server or worker keeps Python's own collection thresholds."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from labledger.cli.entry import SHORT_LIVED_THRESHOLD

_PYTHON_THRESHOLDS = gc.get_threshold()

# Reports, once the interpreter is exiting, what the collector was set to and whether the
# command's objects were frozen (left out of exit's collection).
_AT_EXIT = (
    "import atexit, gc, sys\n"
    "atexit.register(lambda: print(gc.get_threshold()[0], gc.get_freeze_count() > 0))\n"
    "from labledger.cli.entry import main\n"
    "sys.argv = ['labledger', *sys.argv[1:]]\n"
    "main()\n"
)


def _run(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_command_runs_with_the_short_lived_threshold_and_exits_with_its_objects_frozen(
    tmp_path: Path,
) -> None:
    proc = _run(_AT_EXIT, "init", str(tmp_path / "exp"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == f"{SHORT_LIVED_THRESHOLD} True"
    assert (tmp_path / "exp" / "labledger.toml").is_file()  # and the command did its work


def test_a_failing_command_keeps_its_exit_code_and_message(tmp_path: Path) -> None:
    proc = _run(_AT_EXIT, "show", cwd=tmp_path)  # not an experiment folder
    assert proc.returncode != 0
    assert proc.stderr.startswith("Error: ")
    assert "Traceback" not in proc.stderr
    assert proc.stdout.splitlines()[-1] == f"{SHORT_LIVED_THRESHOLD} True"


def test_a_long_running_command_gets_pythons_own_thresholds_back(tmp_path: Path) -> None:
    code = (
        "import gc\n"
        "from labledger.cli import entry\n"
        "gc.set_threshold(entry.SHORT_LIVED_THRESHOLD, 3, 4)\n"
        "entry.long_running()\n"
        "print(*gc.get_threshold())\n"
    )
    proc = _run(code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(n) for n in _PYTHON_THRESHOLDS]


def test_python_dash_m_labledger_is_the_command(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "labledger", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: python -m labledger ")
