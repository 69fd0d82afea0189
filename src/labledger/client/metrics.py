"""``log_metric``/``log_metrics`` for the clients: points buffered, sent in the background.

A call only checks the point and appends it to a buffer (about a microsecond), so a training
loop logging 10,000 points a second is not slowed. A sender sends the buffer as batches to
``POST /experiment/{id}/metrics`` when ``metric_batch_size`` points wait or every
``metric_interval``
seconds, in the order logged, one batch at a time. Every point sent carries its step (one logged
without gets the next step of its series), so a retried batch is stored once. A batch that fails
stays at the head of the buffer and is tried again; one the server refuses (the experiment is
gone ...) is set aside and the next flush raises why. When more than ``metric_max_pending``
points wait (the server is away), the sync ``log_metric`` blocks until there is room again.

Flushed on :meth:`flush_metrics`, when the experiment is ended, when the client is closed, and
(sync client) at interpreter exit. Points the server acknowledged are stored; points logged
after the last acknowledged batch are lost only if the process is killed.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import math
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from labledger.client.calls import Call
from labledger.core.records import check_result_name
from labledger.errors import InvalidInput, LabledgerError

__all__ = [
    "AsyncMetricMethods",
    "MetricMethods",
    "metric_calls",
]

T = TypeVar("T")

#: points per request at most
BATCH = 5_000
#: the longest pause between tries of a failed batch, in seconds
MAX_BACKOFF = 2.0


def _identity(data: Any) -> Any:
    return data


class metric_calls:  # noqa: N801 (a namespace of call builders, as ``calls``)
    """Requests of the metric routes."""

    @staticmethod
    def add(experiment_id: str, points: list[dict[str, Any]]) -> Call[dict[str, Any]]:
        # every point carries its step, so a retried batch is stored once without a key
        return Call(
            "POST", f"experiment/{experiment_id}/metrics", _identity, json={"metrics": points}
        )

    @staticmethod
    def series(experiment_id: str) -> Call[list[dict[str, Any]]]:
        return Call("GET", f"experiment/{experiment_id}/metrics", _identity)

    @staticmethod
    def points(experiment_id: str, name: str, max_points: int) -> Call[dict[str, Any]]:
        return Call(
            "GET",
            f"experiment/{experiment_id}/metrics/{name}",
            _identity,
            params={"max_points": max_points},
        )


@dataclass(frozen=True, slots=True)
class _Point:
    experiment_id: str
    name: str
    value: float
    step: int | None
    at: float


def _point(experiment_id: str, name: str, value: float, step: int | None) -> _Point:
    """Check a point where it is logged, so a bad one fails the caller, not a later batch."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{name}: expected a finite number, got {value!r}", field=name)
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise InvalidInput(f"step: expected a whole number >= 0, got {step!r}", field="step")
    try:
        check_result_name(name)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="name") from None
    return _Point(str(experiment_id), name, float(value), step, time.time())


def _permanent(exc: BaseException) -> bool:
    """An answer that a retry cannot change (the batch is refused, not lost on the way)."""
    status = getattr(exc, "http_status", None) or getattr(exc, "status_code", None)
    return (
        isinstance(exc, LabledgerError)
        and isinstance(status, int)
        and 400 <= status < 500
        and status not in (408, 429)
    )


@dataclass
class _Batch:
    experiment_id: str
    points: list[dict[str, Any]]


class _Buffer:
    """Points waiting to be sent, in the order logged (shared by both senders).

    Points logged without a step get theirs here, when their batch is formed: after the
    series' last step on the server (read once per experiment), so every point sent has a step
    and a retried batch replaces exactly what it stored the first time.
    """

    def __init__(self, max_points: int, max_pending: int) -> None:
        self.max_points = max_points
        self.max_pending = max_pending
        self.pending: deque[_Point] = deque()
        #: the batch being sent; tried again, unchanged, until acknowledged or refused
        self.inflight: _Batch | None = None
        #: experiment id -> series name -> the step a point without one gets next
        self.next_steps: dict[str, dict[str, int]] = {}
        #: points logged, acknowledged by the server, refused by it (each counted once)
        self.logged = 0
        self.acknowledged = 0
        self.refused = 0
        #: a flush waits for the points logged before it: send without waiting for more
        self.flush_target = 0
        self.error: BaseException | None = None
        #: why a batch was refused, raised by the next flush
        self.rejection: BaseException | None = None

    @property
    def waiting(self) -> int:
        return len(self.pending) + (len(self.inflight.points) if self.inflight else 0)

    @property
    def done(self) -> int:
        return self.acknowledged + self.refused

    def should_wait(self) -> bool:
        """True when the sender may wait for more points before sending."""
        return self.inflight is None and (
            len(self.pending) < self.max_points and self.done >= self.flush_target
        )

    def unknown_steps(self) -> str | None:
        """The experiment whose series' last steps must be read before its next batch."""
        if self.inflight is None and self.pending:
            experiment_id = self.pending[0].experiment_id
            if experiment_id not in self.next_steps:
                return experiment_id
        return None

    def learn_steps(self, experiment_id: str, series: list[dict[str, Any]]) -> None:
        self.next_steps[experiment_id] = {
            s["name"]: int(s["last_step"]) + 1 for s in series if s.get("last_step") is not None
        }

    def batch(self) -> _Batch | None:
        """The batch to send: the one in flight, or the oldest points of one experiment."""
        if self.inflight is None and self.pending:
            experiment_id = self.pending[0].experiment_id
            steps = self.next_steps.setdefault(experiment_id, {})
            points: list[dict[str, Any]] = []
            while self.pending and len(points) < BATCH:
                p = self.pending[0]
                if p.experiment_id != experiment_id:
                    break
                self.pending.popleft()
                step = steps.get(p.name, 0) if p.step is None else p.step
                steps[p.name] = max(steps.get(p.name, 0), step + 1)
                when = datetime.fromtimestamp(p.at, UTC).isoformat()
                points.append({"name": p.name, "value": p.value, "step": step, "timestamp": when})
            self.inflight = _Batch(experiment_id, points)
        return self.inflight

    def sent(self) -> None:
        assert self.inflight is not None
        self.acknowledged += len(self.inflight.points)
        self.inflight = None
        self.error = None

    def failed(self, exc: BaseException) -> bool:
        """Note a failed send; True when the batch was refused (it is then set aside)."""
        self.error = exc
        if _permanent(exc) and self.inflight is not None:
            self.refused += len(self.inflight.points)
            self.inflight = None
            self.rejection = exc
            return True
        return False

    def check(self, target: int, timeout: float | None) -> None:
        """Raise when a batch was refused, or when the points up to ``target`` are not done
        (after ``timeout``)."""
        if self.rejection is not None:
            rejection, self.rejection = self.rejection, None
            raise rejection
        if self.done < target:
            if self.error is not None:
                raise self.error
            raise InvalidInput(
                f"metrics: {target - self.done} points not acknowledged after {timeout} s",
                field="metrics",
            )


class MetricMethods:
    """``log_metric`` and friends for :class:`labledger.client.ExperimentClient` (a thread
    sends)."""

    if TYPE_CHECKING:

        def _run(self, call: Call[T]) -> T: ...

    #: send when this many points wait, or every ``metric_interval`` seconds
    metric_batch_size: int = 1_000
    metric_interval: float = 1.0
    #: ``log_metric`` blocks while this many points wait
    metric_max_pending: int = 1_000_000

    _metric_buffer: _Buffer | None = None
    _metric_lock: threading.Condition
    _metric_thread: threading.Thread | None = None
    _metric_closed: bool = False

    def _metrics(self) -> _Buffer:
        buffer = self._metric_buffer
        if buffer is None:
            self._metric_lock = threading.Condition()
            buffer = self._metric_buffer = _Buffer(self.metric_batch_size, self.metric_max_pending)
            self._metric_closed = False
            self._metric_thread = threading.Thread(
                target=_send_forever,
                args=(weakref.ref(self),),
                name="labledger-metrics",
                daemon=True,
            )
            self._metric_thread.start()
            atexit.register(_flush_at_exit, weakref.ref(self))
        return buffer

    def log_metric(
        self, experiment_id: str, name: str, value: float, step: int | None = None
    ) -> None:
        """Log one point of the series ``name``; sent in the background.

        Without ``step`` the point goes after the series' last step. A step logged again
        replaces its point.
        """
        self._log([_point(experiment_id, name, value, step)])

    def log_metrics(
        self, experiment_id: str, values: Mapping[str, float], step: int | None = None
    ) -> None:
        """Log one point of each series named in ``values`` (at the same ``step``)."""
        self._log([_point(experiment_id, n, v, step) for n, v in values.items()])

    def _log(self, points: list[_Point]) -> None:
        buffer = self._metrics()
        with self._metric_lock:
            while buffer.waiting >= buffer.max_pending and not self._metric_closed:
                self._metric_lock.wait(1.0)
            buffer.pending.extend(points)
            buffer.logged += len(points)
            if len(buffer.pending) >= buffer.max_points:
                self._metric_lock.notify_all()

    def flush_metrics(self, timeout: float | None = 30.0) -> None:
        """Send every point logged so far and wait until the server acknowledged them.

        Raises why a batch was refused (``ExperimentNotFound`` ...), or the last error
        (the server is away ...) when the points could not all be sent in ``timeout`` seconds;
        those stay buffered and are tried again.
        """
        buffer = self._metric_buffer
        if buffer is None:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._metric_lock:
            target = buffer.logged
            buffer.flush_target = max(buffer.flush_target, target)
            self._metric_lock.notify_all()
            while buffer.done < target:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._metric_lock.wait(0.2 if left is None else min(left, 0.2))
            buffer.check(target, timeout)

    def _close_metrics(self) -> None:
        """Flush, then stop the sender (called by ``close``)."""
        if self._metric_buffer is None:
            return
        try:
            self.flush_metrics()
        finally:
            with self._metric_lock:
                self._metric_closed = True
                self._metric_lock.notify_all()
            if self._metric_thread is not None:
                self._metric_thread.join(timeout=5)

    def add_metric_points(self, experiment_id: str, points: list[dict[str, Any]]) -> None:
        """Send points now, unbuffered (``{"name", "value", "step", "timestamp"?}`` each, in
        batches); for importers, which have the whole history at hand."""
        for start in range(0, len(points), BATCH):
            self._run(metric_calls.add(str(experiment_id), points[start : start + BATCH]))

    def list_metrics(self, experiment_id: str) -> list[dict[str, Any]]:
        """The experiment's series with their count, last, lowest and highest values."""
        return self._run(metric_calls.series(str(experiment_id)))

    def get_metric(self, experiment_id: str, name: str, max_points: int = 1_000) -> dict[str, Any]:
        """One series' points, downsampled to at most ``max_points``."""
        return self._run(metric_calls.points(str(experiment_id), name, max_points))


def _send_once(client: MetricMethods, buffer: _Buffer) -> None:
    """Read unknown last steps, then send the batch in flight (outside the lock)."""
    with client._metric_lock:
        experiment_id = buffer.unknown_steps()
    if experiment_id is not None:
        try:
            series = client._run(metric_calls.series(experiment_id))
        except Exception as exc:
            if not _permanent(exc):
                raise
            series = []  # the batch itself will be refused, naming why
        with client._metric_lock:
            buffer.learn_steps(experiment_id, series)
    with client._metric_lock:
        batch = buffer.batch()
    if batch is not None:
        client._run(metric_calls.add(batch.experiment_id, batch.points))
        with client._metric_lock:
            buffer.sent()
            client._metric_lock.notify_all()


def _send_forever(ref: weakref.ref[MetricMethods]) -> None:
    """The sender thread: one batch at a time, oldest first, retried until acknowledged."""
    failures = 0
    while True:
        client = ref()
        if client is None or client._metric_buffer is None:
            return
        buffer, lock = client._metric_buffer, client._metric_lock
        with lock:
            if client._metric_closed and not buffer.waiting:
                return
            if buffer.should_wait() and not client._metric_closed:
                lock.wait(client.metric_interval)
            idle = not buffer.waiting
        if idle:
            del client  # a client dropped meanwhile can be collected
            continue
        try:
            _send_once(client, buffer)
            failures = 0
            continue
        except Exception as exc:  # any failure: the batch stays (or is set aside if refused)
            failures += 1
            with lock:
                refused = buffer.failed(exc)
                lock.notify_all()
                closed = client._metric_closed
        finally:
            del client  # a client dropped meanwhile can be collected
        if refused:
            continue
        if closed:
            return  # close() gave up waiting; the points are reported by its flush
        # a flush wakes the sender at once; else it tries again after a short pause
        with lock:
            lock.wait(_backoff(failures))


def _backoff(failures: int) -> float:
    """Seconds before trying a failed batch again (each try already retried inside ``_run``)."""
    return float(min(MAX_BACKOFF, 0.25 * 2 ** min(failures, 4)))


def _flush_at_exit(ref: weakref.ref[MetricMethods]) -> None:
    client = ref()
    if client is not None and client._metric_buffer is not None:
        # the interpreter is ending: an error has no one left to tell
        with contextlib.suppress(Exception):
            client.flush_metrics(timeout=10.0)


class AsyncMetricMethods:
    """``log_metric`` and friends for :class:`labledger.client.AsyncExperimentClient` (a task
    of the running event loop sends)."""

    if TYPE_CHECKING:

        async def _run(self, call: Call[T]) -> T: ...

    metric_batch_size: int = 1_000
    metric_interval: float = 1.0
    metric_max_pending: int = 1_000_000

    _metric_buffer: _Buffer | None = None
    _metric_wake: asyncio.Event
    _metric_done: asyncio.Condition
    _metric_task: asyncio.Task[None] | None = None

    def _metrics(self) -> _Buffer:
        if self._metric_buffer is None:
            self._metric_buffer = _Buffer(self.metric_batch_size, self.metric_max_pending)
            self._metric_wake = asyncio.Event()
            self._metric_done = asyncio.Condition()
        if self._metric_task is None or self._metric_task.done():
            self._metric_task = asyncio.get_running_loop().create_task(self._send_metrics())
        return self._metric_buffer

    def log_metric(
        self, experiment_id: str, name: str, value: float, step: int | None = None
    ) -> None:
        """Log one point (not a coroutine: it only buffers); call it inside the event loop.

        Raises :class:`InvalidInput` when more than ``metric_max_pending`` points wait: await
        :meth:`flush_metrics` now and then if the server may be away for long.
        """
        self._log([_point(experiment_id, name, value, step)])

    def log_metrics(
        self, experiment_id: str, values: Mapping[str, float], step: int | None = None
    ) -> None:
        """Log one point of each series named in ``values`` (at the same ``step``)."""
        self._log([_point(experiment_id, n, v, step) for n, v in values.items()])

    def _log(self, points: list[_Point]) -> None:
        buffer = self._metrics()
        if buffer.waiting >= buffer.max_pending:
            raise InvalidInput(
                f"metrics: {buffer.waiting} points wait to be sent; "
                "await flush_metrics() before logging more",
                field="metrics",
            )
        buffer.pending.extend(points)
        buffer.logged += len(points)
        if len(buffer.pending) >= buffer.max_points:
            self._metric_wake.set()

    async def flush_metrics(self, timeout: float | None = 30.0) -> None:
        """Send every point logged so far and wait until the server acknowledged them."""
        buffer = self._metric_buffer
        if buffer is None:
            return
        self._metrics()  # a sender is running
        target = buffer.logged
        buffer.flush_target = max(buffer.flush_target, target)
        self._metric_wake.set()

        async def done() -> None:
            async with self._metric_done:
                await self._metric_done.wait_for(lambda: buffer.done >= target)

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done(), timeout)
        buffer.check(target, timeout)

    async def _close_metrics(self) -> None:
        if self._metric_buffer is None:
            return
        try:
            await self.flush_metrics()
        finally:
            if self._metric_task is not None:
                self._metric_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._metric_task
                self._metric_task = None

    async def _send_metrics(self) -> None:
        buffer = self._metric_buffer
        assert buffer is not None
        failures = 0
        while True:
            if buffer.should_wait():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._metric_wake.wait(), self.metric_interval)
                self._metric_wake.clear()
            if not buffer.waiting:
                continue
            try:
                experiment_id = buffer.unknown_steps()
                if experiment_id is not None:
                    try:
                        series = await self._run(metric_calls.series(experiment_id))
                    except Exception as exc:
                        if not _permanent(exc):
                            raise
                        series = []
                    buffer.learn_steps(experiment_id, series)
                batch = buffer.batch()
                if batch is not None:
                    await self._run(metric_calls.add(batch.experiment_id, batch.points))
                    buffer.sent()
                failures = 0
            except Exception as exc:
                failures += 1
                if not buffer.failed(exc):
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._metric_wake.wait(), _backoff(failures))
                    self._metric_wake.clear()
            async with self._metric_done:
                self._metric_done.notify_all()

    async def add_metric_points(self, experiment_id: str, points: list[dict[str, Any]]) -> None:
        """Send points now, unbuffered, in batches (for importers)."""
        for start in range(0, len(points), BATCH):
            await self._run(metric_calls.add(str(experiment_id), points[start : start + BATCH]))

    async def list_metrics(self, experiment_id: str) -> list[dict[str, Any]]:
        """The experiment's series with their count, last, lowest and highest values."""
        return await self._run(metric_calls.series(str(experiment_id)))

    async def get_metric(
        self, experiment_id: str, name: str, max_points: int = 1_000
    ) -> dict[str, Any]:
        """One series' points, downsampled to at most ``max_points``."""
        return await self._run(metric_calls.points(str(experiment_id), name, max_points))
