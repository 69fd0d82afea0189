"""Running one phase: a real subprocess whose output streams live to the terminal and to a log.

Each phase runs in its own session (process group), so labledger decides what a Ctrl-C means:
the first SIGINT or SIGTERM is forwarded to the phase's whole process group; if it has not
ended after a grace period it gets SIGTERM, then SIGKILL.
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

__all__ = ["GRACE_S", "PhaseExit", "SignalGuard", "command_for", "run_phase"]

#: seconds a phase gets to exit after a forwarded Ctrl-C before it is terminated, then killed
GRACE_S = 5.0
_READ = 65536


@dataclass(frozen=True)
class PhaseExit:
    """How a phase process ended: its exit code (negative: killed by that signal), duration."""

    exit_code: int
    duration_s: float
    cancelled: bool


class SignalGuard:
    """Catches SIGINT/SIGTERM while phases run and forwards them to the running phase."""

    def __init__(self) -> None:
        self.cancelled = False
        self.signal: int | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._since: float | None = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.cancelled = True
        self.signal = signum
        self._since = self._since or time.monotonic()
        self._forward(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

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
        old_int = signal.signal(signal.SIGINT, self._handle)
        old_term = signal.signal(signal.SIGTERM, self._handle)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)


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
) -> PhaseExit:
    """Run ``argv``; copy its merged stdout/stderr to ``log_path`` and ``echo`` as it comes."""
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
            while (exit_code := proc.poll()) is None:
                time.sleep(0.05)
                guard.escalate()
        finally:
            guard._child = None
            proc.stdout.close()
    return PhaseExit(exit_code, time.monotonic() - start, guard.cancelled)


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
