"""Running one phase: a real subprocess whose output streams live to the terminal and to a log.

Each phase runs in its own session (process group), so labledger decides what a Ctrl-C means:
the first SIGINT, SIGTERM or SIGHUP (the terminal or SSH session closed) is forwarded to the
phase's whole process group; if it has not ended after a grace period it gets SIGTERM, then
SIGKILL.

A phase never outlives its recorder, even one killed with SIGKILL (which no handler sees): a
small watchdog process holds the reading end of a pipe whose writing end only the recorder
holds. When the pipe closes without the recorder's "done", the recorder is gone, and the
watchdog ends the phase's process group (SIGTERM, then SIGKILL after the grace period).
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import BinaryIO

__all__ = [
    "GRACE_S",
    "STOP_SIGNALS",
    "PhaseExit",
    "SignalGuard",
    "Watchdog",
    "command_for",
    "run_phase",
]

#: seconds a phase gets to exit after a forwarded Ctrl-C before it is terminated, then killed
GRACE_S = 5.0
#: the signals that stop a run: Ctrl-C, a polite kill, and a closed terminal
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_READ = 65536

# The watchdog: reads lines, each the process group id of a phase that started or "done" when
# it ended. End of file while a phase runs means the recorder died: end that group. It ignores
# the signals that stop a run, so a closed terminal cannot take it down before it has done its
# job. One watchdog serves every phase of a run. It is a POSIX shell script, not Python: a
# shell starts in a millisecond of CPU where an interpreter takes tens, on every run. A last
# line cut short (the recorder died while writing it) makes `read` fail: it is not used.
_WATCHDOG = """
trap '' INT TERM HUP
group=
while IFS= read -r line; do
    if [ "$line" = done ]; then group=; else group=$line; fi
done
[ -n "$group" ] || exit 0
kill -s TERM -- "-$group" 2>/dev/null || exit 0
polls=$1
while [ "$polls" -gt 0 ]; do
    sleep 0.05
    kill -s 0 -- "-$group" 2>/dev/null || exit 0
    polls=$((polls - 1))
done
kill -s KILL -- "-$group" 2>/dev/null
exit 0
"""
#: the watchdog checks every 50 ms whether the group it terminated is gone
_WATCHDOG_POLLS = round(GRACE_S / 0.05)


@dataclass(frozen=True)
class PhaseExit:
    """How a phase process ended: its exit code (negative: killed by that signal), duration."""

    exit_code: int
    duration_s: float
    cancelled: bool


class SignalGuard:
    """Catches SIGINT/SIGTERM/SIGHUP while phases run and forwards them to the running phase."""

    def __init__(self) -> None:
        self.cancelled = False
        self.signal: int | None = None
        #: how many stop signals arrived so far
        self.count = 0
        self._child: subprocess.Popen[bytes] | None = None
        self._since: float | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.cancelled = True
        self.signal = signum
        self.count += 1
        now = time.monotonic()
        # a second signal during a time-bounded phase (fetch after a stop) starts the grace now
        self._since = now if self._since is None else min(self._since, now)
        self._forward(signum)

    def bound(self, seconds: float) -> None:
        """Give the next phase ``seconds`` to end before it is terminated, then killed."""
        self._since = time.monotonic() + seconds - GRACE_S

    def _forward(self, sig: int) -> None:
        child = self._child
        if child is not None and child.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(child.pid, sig)

    def escalate(self) -> None:
        """Terminate, then kill, a phase that ignores a forwarded Ctrl-C."""
        if self._since is None:
            return
        waited = time.monotonic() - self._since
        if waited > 2 * GRACE_S:
            self._forward(signal.SIGKILL)
        elif waited > GRACE_S:
            self._forward(signal.SIGTERM)

    @contextmanager
    def installed(self) -> Iterator[SignalGuard]:
        """Install the handlers for the duration of the block, then restore the old ones."""
        old = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}
        try:
            yield self
        finally:
            for signum, handler in old.items():
                signal.signal(signum, handler)


def command_for(script: Path) -> list[str]:
    """The argv that runs ``script``.

    Directly if it is executable and starts with ``#!``; else through python (``.py``) or bash.
    """
    if os.access(script, os.X_OK):
        with script.open("rb") as fh:
            if fh.read(2) == b"#!":
                return [str(script)]
    if script.suffix == ".py":
        return [shutil.which("python3") or shutil.which("python") or "python3", str(script)]
    return [shutil.which("bash") or "/bin/sh", str(script)]


def run_phase(
    argv: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    log_path: Path,
    echo: Callable[[bytes], None],
    guard: SignalGuard,
    on_start: Callable[[int], None] | None = None,
    watchdog: Watchdog | None = None,
) -> PhaseExit:
    """Run ``argv``; copy its merged stdout/stderr to ``log_path`` and ``echo`` as it comes.

    ``watchdog`` is the run's (see :class:`Watchdog`); without one, the phase gets its own.
    """
    if watchdog is None:
        with Watchdog() as own:
            return run_phase(
                argv,
                cwd=cwd,
                env=env,
                log_path=log_path,
                echo=echo,
                guard=guard,
                on_start=on_start,
                watchdog=own,
            )
    start = time.monotonic()
    with log_path.open("ab", buffering=0) as log:
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            # Like a shell, report a script that cannot start as exit code 127, in the log too.
            message = f"labledger: cannot start {argv[0]}: {exc}\n".encode()
            log.write(message)
            echo(message)
            return PhaseExit(127, time.monotonic() - start, guard.cancelled)
        watchdog.watch(proc.pid)
        guard._child = proc
        if on_start is not None:
            on_start(proc.pid)
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        try:
            with selectors.DefaultSelector() as sel:
                sel.register(fd, selectors.EVENT_READ)
                while True:
                    if sel.select(timeout=0.2) and not _pump(fd, log, echo):
                        break  # EOF: every writer closed the pipe
                    if proc.poll() is not None:
                        # The phase ended; take what is buffered but do not wait for any
                        # background process it left holding the pipe.
                        _pump(fd, log, echo)
                        break
                    guard.escalate()
            while True:
                try:  # returns as soon as the phase has exited (it polls from 0.5 ms up)
                    exit_code = proc.wait(timeout=0.05)
                    break
                except subprocess.TimeoutExpired:
                    guard.escalate()
        finally:
            guard._child = None
            proc.stdout.close()
            watchdog.release()
    return PhaseExit(exit_code, time.monotonic() - start, guard.cancelled)


class Watchdog:
    """The process that ends a phase's process group if the recorder dies (module docstring).

    Use as a context manager around the phases of a run: started once, it watches each phase
    from :meth:`watch` to :meth:`release`.
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._pipe: int | None = None

    def __enter__(self) -> Watchdog:
        read_end, self._pipe = os.pipe()  # not inheritable: phases never hold the writing end
        try:
            self._proc = subprocess.Popen(
                ["/bin/sh", "-c", _WATCHDOG, "watchdog", str(_WATCHDOG_POLLS)],
                stdin=read_end,
                env={"PATH": os.environ.get("PATH", os.defpath)},  # for sleep, and nothing else
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a closed terminal's SIGHUP does not reach it
            )
        finally:
            os.close(read_end)
        return self

    def watch(self, group: int) -> None:
        """Tell the watchdog which process group to end if we die."""
        self._say(f"{group}\n".encode())

    def release(self) -> None:
        """The watched phase ended: nothing to end if we die now."""
        self._say(b"done\n")

    def _say(self, line: bytes) -> None:
        assert self._pipe is not None
        with suppress(OSError):  # a watchdog that could not start must not stop the run
            os.write(self._pipe, line)

    def __exit__(self, *exc: object) -> None:
        assert self._pipe is not None and self._proc is not None
        self.release()
        os.close(self._pipe)
        self._proc.wait()


def _pump(fd: int, log: BinaryIO, echo: Callable[[bytes], None]) -> bool:
    """Copy what can be read now; False at end of file."""
    while True:
        try:
            chunk = os.read(fd, _READ)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        log.write(chunk)
        echo(chunk)
