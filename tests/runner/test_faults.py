"""Faults with real processes: a failing phase, Ctrl-C, and a recorder killed mid-run."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.recorder_support import (
    CLI,
    env,
    kill_group_of,
    labledger,
    labledger_json,
    make_experiment,
    start_labledger,
    wait_for,
    write_script,
)

# every test here drives several real labledger processes: seconds each
pytestmark = pytest.mark.slow

SLOW_RUN = """\
echo $$ > "$LABLEDGER_EXPERIMENT_DIR/phase.pid"
mkdir -p results
echo "partial $lr" > results/partial.txt
echo "written before the wait" > "$LABLEDGER_OUTPUTS_DIR/early.txt"
echo "run started"
touch "$LABLEDGER_EXPERIMENT_DIR/started"
sleep 60
echo "never printed"
"""


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie nobody reaped yet counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in {"Z", "X"}


def wait_until_gone(pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        assert time.monotonic() < deadline, f"process {pid} outlived its recorder"
        time.sleep(0.05)


def test_failing_phase_skips_later_phases_but_fetch_and_keeps_outputs_and_logs(
    tmp_path: Path,
) -> None:
    exp = make_experiment(
        tmp_path / "exp",
        run='mkdir -p results; echo "half done" > results/half.txt; echo "oops" >&2; exit 3\n',
    )
    labledger(exp, "new", "--var", "lr=0.5")
    result = labledger(exp, "run", ok=False)
    assert result.returncode == 1
    assert "oops" in result.stdout  # streamed live to the terminal

    shown = labledger_json(exp, "show")
    assert shown["experiment"]["status"] == "failed"
    phases = {p["phase"]: p for p in shown["phases"]}
    assert phases["pre-run"]["status"] == "ok"
    assert phases["run"]["status"] == "failed"
    assert phases["run"]["exit_code"] == 3
    assert phases["post-run"]["status"] == "skipped"
    assert phases["fetch"]["status"] == "ok"
    outputs = [e["path"] for e in shown["files"]["outputs"]]
    assert outputs == ["outputs/half.txt"]
    assert "oops" in labledger(exp, "logs", "--phase", "run").stdout


def test_ctrl_c_cancels_the_run_and_keeps_what_exists(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", run=SLOW_RUN)
    labledger(exp, "new", "--var", "lr=0.1")
    proc = start_labledger(exp, "run")
    try:
        wait_for(exp / "started")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        kill_group_of(exp / "phase.pid")
    assert proc.returncode == 1
    assert b"run started" in out

    shown = labledger_json(exp, "show")
    assert shown["experiment"]["status"] == "cancelled"
    phases = {p["phase"]: p["status"] for p in shown["phases"]}
    assert phases == {
        "pre-run": "ok",
        "run": "cancelled",
        "post-run": "skipped",
        "fetch": "ok",  # ran after the stop, so the partial results are archived
    }
    assert [e["path"] for e in shown["files"]["outputs"]] == [
        "outputs/early.txt",
        "outputs/partial.txt",
    ]
    assert "run started" in labledger(exp, "logs", "--phase", "run").stdout
    assert "never printed" not in labledger(exp, "logs", "--phase", "run").stdout


def test_killed_recorder_is_found_by_the_next_command_and_recorded_unknown(
    tmp_path: Path,
) -> None:
    exp = make_experiment(tmp_path / "exp", run=SLOW_RUN)
    run_id = labledger_json(exp, "new", "--var", "lr=0.1")["run_id"]
    proc = start_labledger(exp, "run")
    try:
        wait_for(exp / "started")
        phase_pid = int((exp / "phase.pid").read_text())
        assert alive(phase_pid)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
        result = labledger(exp, "list", "--json")
    finally:
        kill_group_of(exp / "phase.pid")
    assert "was killed" in result.stderr
    assert result.stdout.count(run_id) == 1
    wait_until_gone(phase_pid)  # the phase did not outlive its recorder

    shown = labledger_json(exp, "show", run_id)
    assert shown["experiment"]["status"] == "unknown"
    assert shown["experiment"]["ended_at"] is not None
    phases = {p["phase"]: p["status"] for p in shown["phases"]}
    assert phases == {
        "pre-run": "ok",
        "run": "interrupted",
        "post-run": "skipped",
        "fetch": "skipped",
    }
    assert [e["path"] for e in shown["files"]["outputs"]] == ["outputs/early.txt"]
    assert "run started" in labledger(exp, "logs", run_id, "--phase", "run").stdout
    # the orphan is recovered once; the folder is usable again
    assert labledger(exp, "end", "-o", "killed on purpose").returncode == 0
    assert labledger_json(exp, "new")["number"] == 2


def test_a_later_phase_is_ended_when_its_recorder_is_killed(tmp_path: Path) -> None:
    # One watchdog serves every phase of a run: it must end the phase running when the
    # recorder dies, not the first one it was told about.
    exp = make_experiment(tmp_path / "exp", run="echo quick\n")
    write_script(exp / "post-run.sh", SLOW_RUN)
    labledger_json(exp, "new", "--var", "lr=0.1")
    proc = start_labledger(exp, "run")
    try:
        wait_for(exp / "started")
        phase_pid = int((exp / "phase.pid").read_text())
        assert alive(phase_pid)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
        wait_until_gone(phase_pid)  # before anything here kills it
    finally:
        kill_group_of(exp / "phase.pid")
    shown = labledger_json(exp, "show")
    phases = {p["phase"]: p["status"] for p in shown["phases"]}
    assert phases == {"pre-run": "ok", "run": "ok", "post-run": "interrupted", "fetch": "skipped"}


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_phase_ignoring_sigterm_is_killed_when_its_recorder_dies_whatever_its_watchdog_got(
    tmp_path: Path,
) -> None:
    # The watchdog ignores the signals that stop a run (a closed terminal sends them to all),
    # and kills a phase group that shrugs off its SIGTERM once the grace period has passed.
    stubborn = "trap '' TERM\n" + SLOW_RUN
    exp = make_experiment(tmp_path / "exp", run=stubborn)
    labledger_json(exp, "new", "--var", "lr=0.1")
    proc = start_labledger(exp, "run")
    try:
        wait_for(exp / "started")
        phase_pid = int((exp / "phase.pid").read_text())
        watchdogs = [
            c for c in _children(proc.pid) if b"watchdog" in Path(f"/proc/{c}/cmdline").read_bytes()
        ]
        assert len(watchdogs) == 1
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            os.kill(watchdogs[0], sig)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
        wait_until_gone(phase_pid)
    finally:
        kill_group_of(exp / "phase.pid")
    shown = labledger_json(exp, "list")
    assert shown[0]["status"] == "unknown"


@pytest.mark.parametrize("missing", ["run", "fetch"])
def test_run_refuses_a_config_without_a_required_runner(tmp_path: Path, missing: str) -> None:
    exp = make_experiment(tmp_path / "exp", run="echo hi\n")
    labledger(exp, "new")
    text = (exp / "run.toml").read_text()
    (exp / "run.toml").write_text(text.replace(f'\n{missing} = "{missing}.sh"', "\n"))
    result = labledger(exp, "run", ok=False)
    assert result.returncode == 2
    assert "run.toml" in result.stderr
    assert f"runners.{missing}" in result.stderr
    assert "required" in result.stderr


def test_phase_output_streams_live_while_the_phase_runs(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", run="echo unused\n")
    (exp / "run.py").write_text(
        "import os, time\n"
        "print('first line', flush=False)\n"
        "go = os.path.join(os.environ['LABLEDGER_EXPERIMENT_DIR'], 'go')\n"
        "deadline = time.time() + 30\n"
        "while not os.path.exists(go) and time.time() < deadline:\n"
        "    time.sleep(0.05)\n"
        "print('second line', 'go' if os.path.exists(go) else 'timed out')\n"
    )
    labledger(exp, "new", "--runner", "run=run.py")
    proc = start_labledger(exp, "run")
    try:
        assert proc.stdout is not None
        seen = b""
        while b"first line" not in seen:
            chunk = proc.stdout.readline()
            assert chunk, f"labledger ended before streaming the first line: {seen!r}"
            seen += chunk
        (exp / "go").touch()  # only now may the phase finish
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert b"second line go" in rest
    assert proc.returncode == 0


def test_a_closed_terminal_stops_the_run_like_ctrl_c(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", run=SLOW_RUN)
    labledger(exp, "new", "--var", "lr=0.1")
    # the recorder runs on a real terminal (a pty it controls); closing it sends SIGHUP
    leader, follower = pty.openpty()

    def controlling_terminal() -> None:
        import fcntl
        import termios

        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [*CLI, "run"],
        cwd=exp,
        env=env(),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(follower)
    try:
        wait_for(exp / "started")
        phase_pid = int((exp / "phase.pid").read_text())
        os.close(leader)  # the terminal window (or SSH session) is closed
        proc.wait(timeout=60)
        wait_until_gone(phase_pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kill_group_of(exp / "phase.pid")

    shown = labledger_json(exp, "show")
    assert shown["experiment"]["status"] == "cancelled"
    phases = {p["phase"]: p["status"] for p in shown["phases"]}
    assert phases == {"pre-run": "ok", "run": "cancelled", "post-run": "skipped", "fetch": "ok"}
    assert [e["path"] for e in shown["files"]["outputs"]] == [
        "outputs/early.txt",
        "outputs/partial.txt",
    ]
    assert "closed terminal (SIGHUP)" in shown["events"][-1]["data"]["note"]


def test_fetch_after_a_stop_is_time_bounded_and_a_second_ctrl_c_skips_it(tmp_path: Path) -> None:
    exp = make_experiment(
        tmp_path / "exp",
        run=SLOW_RUN,
        fetch='touch "$LABLEDGER_EXPERIMENT_DIR/fetching"\nsleep 60\n',
    )
    labledger(exp, "new", "--var", "lr=0.1")
    proc = start_labledger(exp, "run")
    try:
        wait_for(exp / "started")
        proc.send_signal(signal.SIGINT)
        wait_for(exp / "fetching")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        kill_group_of(exp / "phase.pid")
    assert b"to keep partial outputs" in out
    shown = labledger_json(exp, "show")
    phases = {p["phase"]: p["status"] for p in shown["phases"]}
    assert phases == {
        "pre-run": "ok",
        "run": "cancelled",
        "post-run": "skipped",
        "fetch": "cancelled",
    }
    assert [e["path"] for e in shown["files"]["outputs"]] == ["outputs/early.txt"]


def test_a_full_disk_fails_with_one_line_reading_goes_on_and_space_recovers(
    tmp_path: Path, small_disk: Callable[[int], Path]
) -> None:
    disk = small_disk(6)
    # 2 MiB of results, copied to outputs/ by fetch: archiving them needs 2 MiB more than fits
    exp = make_experiment(
        disk / "exp", run="mkdir -p results && head -c 2097152 /dev/urandom > results/a.bin\n"
    )
    run_id = labledger_json(exp, "new")["run_id"]
    ran = labledger(exp, "run", ok=False)
    assert ran.returncode == 1
    error = ran.stderr.strip().splitlines()[-1]
    assert (
        error.startswith(f"Error: No space left on the disk holding {exp}") and str(disk) in error
    )
    assert "Traceback" not in ran.stderr

    # reading commands work, and say why the run is not archived yet
    shown = labledger(exp, "show", "--json")
    assert json.loads(shown.stdout)["experiment"]["status"] == "in_progress"
    assert "could not be archived yet" in shown.stderr
    assert labledger(exp, "list", "--json").returncode == 0
    assert labledger(exp, "verify").returncode == 0
    # writing commands refuse with the same one line
    refused = labledger(exp, "new", ok=False)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "No space left on the disk" in refused.stderr

    shutil.rmtree(exp / "results")  # the user frees space; nothing else is done by hand
    listed = labledger(exp, "list", "--json")
    assert "archived now that there is space" in listed.stderr
    shown = labledger_json(exp, "show", run_id)
    assert shown["experiment"]["status"] == "completed"
    outputs = {e["path"]: e for e in shown["files"]["outputs"]}
    assert outputs["outputs/a.bin"]["size"] == 2097152
    assert labledger(exp, "verify").returncode == 0
    labledger(exp, "end", "-o", "done once there was space")
    assert labledger_json(exp, "new")["number"] == 2


def test_every_command_on_a_full_disk_says_so_in_one_line_or_works(
    tmp_path: Path, small_disk: Callable[[int], Path]
) -> None:
    disk = small_disk(3)
    exp = make_experiment(disk / "exp", run="echo hi\n")
    labledger(exp, "new")
    labledger(exp, "run")
    labledger(exp, "end", "-o", "before the disk filled up")
    (exp / ".labledger" / "index.sqlite").unlink()  # the index must be rebuilt: it cannot be
    filler = disk / "filler"
    with filler.open("wb") as fh, contextlib.suppress(OSError):
        while True:
            fh.write(b"\0" * 65536)
            fh.flush()
    assert shutil.disk_usage(disk).free < 65536

    for reading in (["list", "--json"], ["show", "--json"], ["verify"], ["logs", "--phase", "run"]):
        done = labledger(exp, *reading, ok=False)
        assert done.returncode == 0, (reading, done.stderr)
    assert json.loads(labledger(exp, "list", "--json").stdout)[0]["number"] == 1
    for writing in (["new"], ["reindex"]):
        done = labledger(exp, *writing, ok=False)
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines()[-1].startswith("Error: No space left on the disk")

    filler.unlink()
    assert labledger_json(exp, "new")["number"] == 2
