"""The worker loop: claim a queued experiment, hold it by heartbeat, run it, report the outcome.

:class:`Worker` runs any callable per claimed experiment; :class:`Control` is what that callable
gets to ask "may I go on?" between steps. A background thread renews the lease and learns the
experiment's status from each heartbeat: ``paused`` makes :meth:`Control.checkpoint` wait,
``cancelled`` (or a lost lease) makes it raise :class:`ExperimentStopped`.

While it runs an experiment the worker rides out a server it cannot reach for as long as its
lease: every request is retried (those that record something with the same Idempotency-Key),
and only when the lease has passed is the experiment given back, never recorded failed for it.
Ctrl-C at any moment after a claim gives the experiment back to the queue.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from labledger.client.sync import ExperimentClient
from labledger.core.lifecycle import TERMINAL, ExperimentStatus
from labledger.core.models import Experiment
from labledger.core.records import ErrorInfo
from labledger.errors import LabledgerError, LeaseLost, ServerUnreachable

__all__ = ["Control", "ExperimentStopped", "Worker", "WorkerStats", "default_worker_id"]

log = logging.getLogger("labledger.worker")
S = ExperimentStatus


def default_worker_id() -> str:
    """``host:pid``, unique among the workers of a lab."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ExperimentStopped(LabledgerError):
    """The experiment was cancelled or ended elsewhere, or this worker lost its lease."""

    code = "experiment_stopped"

    def __init__(self, experiment_id: str, status: str, reason: str) -> None:
        super().__init__(
            f"Experiment {experiment_id} stopped: {reason} (status {status})",
            experiment_id=experiment_id,
            status=status,
        )
        self.experiment_id = experiment_id
        self.status = status
        self.reason = reason


def error_info(exc: BaseException) -> ErrorInfo:
    """The type, message and traceback of an exception, for a ``failed`` record."""
    text = "".join(traceback.format_exception(exc))
    return ErrorInfo(type=type(exc).__name__, message=str(exc)[:10_000], traceback=text[-200_000:])


class Control:
    """What a running experiment uses to cooperate with the server."""

    def __init__(
        self,
        client: ExperimentClient,
        experiment: Experiment,
        *,
        worker_id: str | None,
        poll_interval: float = 1.0,
    ) -> None:
        self.client = client
        self.experiment = experiment
        self.worker_id = worker_id
        self.poll_interval = poll_interval
        self._status = experiment.status
        self._seen_at = time.monotonic()
        self._lost = False
        self._lock = threading.Lock()

    @property
    def experiment_id(self) -> str:
        """The running experiment's id."""
        return self.experiment.experiment_id

    def observe(self, experiment: Experiment) -> None:
        """Take the status a heartbeat (or a read) reported."""
        with self._lock:
            self._status = experiment.status
            self._seen_at = time.monotonic()

    def lose_lease(self) -> None:
        """Mark the lease as lost (the next checkpoint stops the run)."""
        with self._lock:
            self._lost = True

    @property
    def lost(self) -> bool:
        """True once the lease was lost."""
        return self._lost

    def status(self, *, refresh: bool = False) -> ExperimentStatus:
        """The experiment's status as last seen; read from the server with ``refresh``, or
        when the last look (a heartbeat's or a read's) is older than ``poll_interval``."""
        if refresh or time.monotonic() - self._seen_at >= self.poll_interval:
            self.observe(self.client.get_experiment(self.experiment_id))
        return self._status

    def checkpoint(
        self,
        name: str | None = None,
        data: Mapping[str, Any] | None = None,
        *,
        progress: float | None = None,
    ) -> None:
        """Call between steps: waits while paused, raises :class:`ExperimentStopped` when the
        experiment was cancelled or the lease lost. With ``name``, records a milestone (the
        data to resume from)."""
        status = self.status()
        while True:
            if self._lost:
                raise ExperimentStopped(self.experiment_id, status.value, "the lease was lost")
            if status in TERMINAL or status is S.UNKNOWN:
                raise ExperimentStopped(self.experiment_id, status.value, f"it is {status.value}")
            if status is not S.PAUSED:
                break
            time.sleep(self.poll_interval)
            status = self.status(refresh=True)
        if name is not None:
            self.client.add_milestone(
                self.experiment_id, name, data, progress=progress, worker_id=self.worker_id
            )
        elif progress is not None:
            self.client.set_progress(self.experiment_id, progress)


class _Heartbeat(threading.Thread):
    """Renews the lease every ``interval`` seconds on a client of its own."""

    def __init__(
        self,
        make_client: Callable[[], ExperimentClient],
        control: Control,
        interval: float,
        lease_seconds: float | None,
    ) -> None:
        super().__init__(name=f"heartbeat-{control.experiment_id}", daemon=True)
        self.make_client = make_client
        self.control = control
        self.interval = interval
        self.lease_seconds = lease_seconds
        self.stop = threading.Event()

    def run(self) -> None:
        assert self.control.worker_id is not None
        with self.make_client() as client:
            while not self.stop.wait(self.interval):
                try:
                    self.control.observe(
                        client.heartbeat(
                            self.control.experiment_id,
                            self.control.worker_id,
                            lease_seconds=self.lease_seconds,
                        )
                    )
                except LeaseLost:
                    self.control.lose_lease()
                    return
                except (LabledgerError, OSError) as exc:  # keep trying: the lease may survive
                    log.warning("heartbeat for %s failed: %s", self.control.experiment_id, exc)


@dataclass
class WorkerStats:
    """What a worker did."""

    claimed: int = 0
    completed: int = 0
    failed: int = 0
    stopped: int = 0
    #: given back to the queue because the server stayed out of reach past the lease
    given_back: int = 0
    experiment_ids: list[str] = field(default_factory=list)


Runner = Callable[[Experiment, Control], Mapping[str, Any] | None]


class Worker:
    """Drain the queue: claim, run ``runner(experiment, control)``, report, repeat.

    The runner's returned mapping (if any) is recorded as the experiment's results. An exception
    marks the experiment ``failed`` with its traceback; :class:`ExperimentStopped` reports nothing
    (the experiment was cancelled, or another worker owns it now).
    """

    def __init__(
        self,
        client: ExperimentClient,
        runner: Runner,
        *,
        make_client: Callable[[], ExperimentClient],
        worker_id: str | None = None,
        campaign_id: str | None = None,
        lease_seconds: float | None = None,
        heartbeat_interval: float | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self.client = client
        self.runner = runner
        self.make_client = make_client
        self.worker_id = worker_id or default_worker_id()
        self.campaign_id = campaign_id
        self.lease_seconds = lease_seconds
        self.heartbeat_interval = heartbeat_interval
        self.poll_interval = poll_interval
        self.stats = WorkerStats()
        self._stop = threading.Event()

    def stop(self) -> None:
        """Finish the current experiment, then return from :meth:`run`."""
        self._stop.set()

    def run(self, *, max_experiments: int | None = None, wait: bool = False) -> WorkerStats:
        """Work until the queue is empty (or, with ``wait``, until stopped)."""
        while not self._stop.is_set():
            if max_experiments is not None and self.stats.claimed >= max_experiments:
                break
            experiment: Experiment | None = None
            try:
                # From the moment a claim answers, an interrupt gives the experiment back.
                # A claim is not retried for long: with nothing to hold, there is no lease to
                # ride out an outage for.
                with _interrupts_deferred() as interrupted, _patience(self.client, 0.0):
                    experiment = self.client.claim(
                        self.worker_id,
                        campaign_id=self.campaign_id,
                        lease_seconds=self.lease_seconds,
                    )
                if interrupted.is_set():
                    raise KeyboardInterrupt
                if experiment is None:
                    if not wait:
                        break
                    self._stop.wait(self.poll_interval)
                    continue
                self.stats.claimed += 1
                self.stats.experiment_ids.append(experiment.experiment_id)
                self.run_one(experiment)
            except ServerUnreachable as exc:
                if experiment is not None or not wait:
                    raise
                log.warning("%s: %s; trying again", self.worker_id, exc)
                self._stop.wait(min(10.0, max(self.poll_interval, 1.0)))
            except KeyboardInterrupt:
                # Interrupted by hand: give the experiment back at once instead of letting it
                # wait for the lease to run out.
                if experiment is not None:
                    self._give_back(experiment, "worker interrupted")
                raise
        return self.stats

    def _give_back(self, experiment: Experiment, reason: str) -> None:
        # A fresh client: an interrupt may have left the worker's own in the middle of a request.
        try:
            with self.make_client() as client:
                client.release_experiment(experiment.experiment_id, self.worker_id, reason=reason)
        except LabledgerError as exc:
            log.warning("could not give %s back: %s", experiment.experiment_id, exc)

    def run_one(self, experiment: Experiment) -> None:
        """Run one claimed experiment under heartbeat and report its outcome."""
        control = Control(
            self.client, experiment, worker_id=self.worker_id, poll_interval=self.poll_interval
        )
        lease = self.lease_seconds or _lease_of(experiment) or 60.0
        interval = self.heartbeat_interval or max(0.2, lease / 3)
        beat = _Heartbeat(self.make_client, control, interval, self.lease_seconds)
        beat.start()
        log.info(
            "%s claimed %s (attempt %d)",
            self.worker_id,
            experiment.experiment_id,
            experiment.attempts,
        )
        try:
            with _patience(self.client, lease):
                self._run_and_report(experiment, control)
        finally:
            beat.stop.set()
            beat.join()

    def _run_and_report(self, experiment: Experiment, control: Control) -> None:
        experiment_id = experiment.experiment_id
        try:
            outcome = self.runner(experiment, control)
            control.checkpoint()  # cancelled at the very end still counts as cancelled
            if outcome:
                self.client.add_results(experiment_id, dict(outcome), worker_id=self.worker_id)
            self.client.finish_experiment(experiment_id, "completed", worker_id=self.worker_id)
            self.stats.completed += 1
            log.info("%s completed %s", self.worker_id, experiment_id)
        except ExperimentStopped as stopped:
            log.info("%s", stopped)
            self.stats.stopped += 1
        except ServerUnreachable as exc:
            # Out of reach for the whole lease: the server requeues the experiment once its
            # lease has run out; say so now if it is back.
            log.warning("%s: giving %s back: %s", self.worker_id, experiment_id, exc)
            self.stats.given_back += 1
            self._give_back(experiment, "server unreachable for the whole lease")
        except Exception as exc:
            self.stats.failed += 1
            log.info("%s: %s failed: %r", self.worker_id, experiment_id, exc)
            if control.lost:
                log.warning("experiment %s failed after its lease was lost: %s", experiment_id, exc)
                return
            try:
                self.client.finish_experiment(
                    experiment_id, "failed", worker_id=self.worker_id, error=error_info(exc)
                )
            except LabledgerError as report_error:
                log.warning("could not record the failure of %s: %s", experiment_id, report_error)


@contextlib.contextmanager
def _patience(client: ExperimentClient, seconds: float) -> Iterator[None]:
    """Let ``client`` retry an unreachable server for ``seconds`` inside the block."""
    before = client.retry
    client.retry = dataclasses.replace(before, patience=seconds)
    try:
        yield
    finally:
        client.retry = before


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[threading.Event]:
    """Hold a Ctrl-C back until the block ends, and say whether one came.

    A claim interrupted between the server's answer and its return would leave the experiment
    claimed by a worker that no longer runs. A second Ctrl-C interrupts at once.
    """
    interrupted = threading.Event()
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield interrupted
        return

    def hold(signum: int, frame: FrameType | None) -> None:
        if interrupted.is_set():
            raise KeyboardInterrupt
        interrupted.set()

    signal.signal(signal.SIGINT, hold)
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _lease_of(experiment: Experiment) -> float | None:
    if experiment.lease_expires_at is None or experiment.claimed_at is None:
        return None
    return (experiment.lease_expires_at - experiment.claimed_at).total_seconds()
