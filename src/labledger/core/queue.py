"""The scheduling queue: workers claim queued experiments, hold them by lease, report outcomes.

A claim moves one ``queued`` experiment to ``in_progress`` for one worker and gives it a lease
(``lease_seconds``). The worker renews the lease by heartbeat; the heartbeat's answer carries the
experiment's status, which is how a worker learns of a pause or a cancel. When a lease runs out
(the worker died or hung), the sweep puts the experiment back in the queue, or marks it failed
once it has had ``max_attempts`` claims. Both are events (``lease_expired``), so retries show in
the log. Sweeps run before every claim and periodically in the server.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from labledger.core.conditional import Decision, change_experiment
from labledger.core.ids import utcnow
from labledger.core.lifecycle import TERMINAL, CampaignStatus, ExperimentStatus, check_transition
from labledger.core.models import Event, EventType, Experiment, LabModel
from labledger.core.records import ErrorInfo
from labledger.core.store import Store
from labledger.errors import ExperimentNotFound, LeaseLost

__all__ = [
    "ClaimRequest",
    "FinishRequest",
    "HeartbeatRequest",
    "QueueService",
    "ReleaseRequest",
]

S = ExperimentStatus


class ClaimRequest(LabModel):
    """The body of ``POST /queue/claim``."""

    worker_id: str = Field(min_length=1, max_length=200, description="Who claims (unique name).")
    campaign_id: str | None = Field(default=None, description="Only claim from this campaign.")
    lease_seconds: float | None = Field(
        default=None, gt=0, le=86_400, description="Lease length (default: the server setting)."
    )


class HeartbeatRequest(LabModel):
    """The body of ``POST /experiment/{id}/heartbeat``."""

    worker_id: str = Field(min_length=1, max_length=200)
    lease_seconds: float | None = Field(default=None, gt=0, le=86_400)


class FinishRequest(LabModel):
    """The body of ``POST /experiment/{id}/finish``: the outcome, with the error of a failure."""

    status: Literal["completed", "failed", "cancelled"] = "completed"
    worker_id: str | None = Field(
        default=None, max_length=200, description="When given, the worker must hold the lease."
    )
    error: ErrorInfo | None = None
    reason: str | None = Field(default=None, max_length=1000)


class ReleaseRequest(LabModel):
    """The body of ``POST /experiment/{id}/release``: a worker gives an experiment back."""

    worker_id: str = Field(min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=1000)


class QueueService:
    """Claims, heartbeats, outcomes and lease sweeps over a :class:`Store`.

    ``after_change`` is called with every experiment this service changes (the campaign service
    uses it to start and finish campaigns).
    """

    def __init__(
        self,
        store: Store,
        *,
        lease_seconds: float = 60.0,
        max_attempts: int = 3,
        clock: Callable[[], datetime] = utcnow,
        after_change: Callable[[Experiment], None] | None = None,
    ) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.clock = clock
        self.after_change = after_change or (lambda _exp: None)
        #: claims sweep expired leases at most this often (seconds); the server also sweeps
        self.claim_sweep_every = 1.0
        self._last_sweep: datetime | None = None

    # ------------------------------------------------------------------ claims

    def claim(self, request: ClaimRequest, *, actor: str | None = None) -> Experiment | None:
        """Claim the next claimable experiment for a worker (None when the queue is empty)."""
        now = self.clock()
        if self._last_sweep is None or (now - self._last_sweep).total_seconds() >= (
            self.claim_sweep_every
        ):
            self._last_sweep = now
            self.sweep_expired()
        lease = timedelta(seconds=request.lease_seconds or self.lease_seconds)

        def make_events(claimed: Experiment) -> list[Event]:
            return [
                Event(
                    experiment_id=claimed.experiment_id,
                    campaign_id=claimed.campaign_id,
                    type=EventType.CLAIMED,
                    actor=actor or f"worker:{request.worker_id}",
                    from_status=S.QUEUED.value,
                    to_status=S.IN_PROGRESS.value,
                    at=now,
                    data={
                        "worker_id": request.worker_id,
                        "attempt": claimed.attempts,
                        "lease_expires_at": (now + lease).isoformat(),
                    },
                )
            ]

        check_transition(S.QUEUED, S.IN_PROGRESS)  # the table must allow what claims do
        claimed = self.store.queue.claim_next(
            request.worker_id,
            now,
            now + lease,
            campaign_id=request.campaign_id,
            make_events=make_events,
        )
        if claimed is not None:
            self.after_change(claimed)
        return claimed

    def heartbeat(self, experiment_id: str, request: HeartbeatRequest) -> Experiment:
        """Renew the worker's lease; the answer's status tells it to go on, wait or stop.

        A worker that no longer holds the experiment gets :class:`LeaseLost`. A finished
        experiment is returned as it is (the worker sees ``cancelled`` and stops).
        """
        lease = timedelta(seconds=request.lease_seconds or self.lease_seconds)

        def decide(current: Experiment) -> Decision:
            self._check_holder(current, request.worker_id)
            if current.status in TERMINAL:
                return None
            return {"lease_expires_at": self.clock() + lease}, []

        experiment, _ = change_experiment(self.store, experiment_id, decide)
        return experiment

    def finish(
        self, experiment_id: str, request: FinishRequest, *, actor: str | None = None
    ) -> Experiment:
        """Record an experiment's outcome; a failure keeps its error and traceback.

        With ``worker_id`` the worker must still hold the experiment, whatever state it is in
        now (a worker whose lease ran out gets :class:`LeaseLost` even after another worker
        finished the experiment). Finishing again with the same status changes nothing (a
        retried report is safe).
        """
        target = S(request.status)

        def decide(current: Experiment) -> Decision:
            if request.worker_id is not None:
                self._check_holder(current, request.worker_id)
            if not check_transition(
                current.status, target, entity_id=current.experiment_id, action="finish"
            ):
                return None
            now = self.clock()
            changes: dict[str, Any] = {"status": target, "ended_at": now, "lease_expires_at": None}
            data: dict[str, Any] = {"action": "finish"}
            if request.reason:
                data["reason"] = request.reason
            if request.error is not None:
                error = request.error.model_dump(mode="json")
                data["error"] = error
                changes["metadata"] = {**current.metadata, "error": error}
            if request.worker_id is not None:
                data["worker_id"] = request.worker_id
            event = Event(
                experiment_id=current.experiment_id,
                campaign_id=current.campaign_id,
                type=EventType.STATUS_CHANGED,
                actor=actor,
                from_status=current.status.value,
                to_status=target.value,
                at=now,
                data=data,
            )
            return changes, [event]

        experiment, changed = change_experiment(self.store, experiment_id, decide)
        if changed:
            self.after_change(experiment)
        return experiment

    def release(
        self, experiment_id: str, request: ReleaseRequest, *, actor: str | None = None
    ) -> Experiment:
        """A worker gives an experiment back to the queue (it stops without an outcome)."""

        def decide(current: Experiment) -> Decision:
            self._check_holder(current, request.worker_id)
            check_transition(current.status, S.QUEUED, entity_id=current.experiment_id)
            return self._requeue_changes(current, EventType.STATUS_CHANGED, actor, request.reason)

        experiment, changed = change_experiment(self.store, experiment_id, decide)
        if changed:
            self.after_change(experiment)
        return experiment

    # ------------------------------------------------------------------ sweeps

    def sweep_expired(self, limit: int = 100) -> list[Experiment]:
        """Requeue (or fail, after ``max_attempts``) experiments whose lease ran out."""
        now = self.clock()
        swept: list[Experiment] = []
        for stale in self.store.queue.expired_leases(now, limit):

            def decide(current: Experiment, worker: str | None = stale.worker_id) -> Decision:
                expired = current.lease_expires_at
                if (
                    current.worker_id != worker
                    or expired is None
                    or expired >= self.clock()
                    or current.status not in (S.IN_PROGRESS, S.PAUSED)
                ):
                    return None  # renewed, finished or reclaimed meanwhile
                if current.attempts >= self.max_attempts:
                    return self._fail_changes(current)
                if current.status is S.PAUSED and not self._campaign_held(current):
                    # Paused on its own: stays paused, without a worker; continuing it requeues.
                    return self._orphan_changes(current)
                return self._requeue_changes(current, EventType.LEASE_EXPIRED, "labledger", None)

            try:
                experiment, changed = change_experiment(self.store, stale.experiment_id, decide)
            except ExperimentNotFound:
                continue
            if changed:
                swept.append(experiment)
                self.after_change(experiment)
        return swept

    # ------------------------------------------------------------------ helpers

    def _check_holder(self, current: Experiment, worker_id: str) -> None:
        if current.worker_id != worker_id or current.status not in (S.IN_PROGRESS, S.PAUSED):
            if current.status in TERMINAL and current.worker_id == worker_id:
                return  # cancelled (or finished) while held: the worker learns it from the answer
            raise LeaseLost(
                current.experiment_id, worker_id, current.worker_id, current.status.value
            )

    def _campaign_held(self, current: Experiment) -> bool:
        if current.campaign_id is None:
            return False
        return self.store.campaigns.status_of(current.campaign_id) == CampaignStatus.PAUSED

    def _lease_data(self, current: Experiment) -> dict[str, Any]:
        return {
            "worker_id": current.worker_id,
            "attempt": current.attempts,
            "max_attempts": self.max_attempts,
            "lease_expires_at": current.lease_expires_at.isoformat()
            if current.lease_expires_at
            else None,
        }

    def _requeue_changes(
        self, current: Experiment, kind: EventType, actor: str | None, reason: str | None
    ) -> Decision:
        check_transition(current.status, S.QUEUED, entity_id=current.experiment_id)
        data = {**self._lease_data(current), "action": "requeue"}
        if reason:
            data["reason"] = reason
        event = Event(
            experiment_id=current.experiment_id,
            campaign_id=current.campaign_id,
            type=kind,
            actor=actor,
            from_status=current.status.value,
            to_status=S.QUEUED.value,
            at=self.clock(),
            data=data,
        )
        changes = {
            "status": S.QUEUED,
            "worker_id": None,
            "lease_expires_at": None,
            "claimed_at": None,
        }
        return changes, [event]

    def _fail_changes(self, current: Experiment) -> Decision:
        check_transition(current.status, S.FAILED, entity_id=current.experiment_id)
        now = self.clock()
        message = (
            f"lease of worker {current.worker_id} expired on attempt {current.attempts} of "
            f"{self.max_attempts}; not retried"
        )
        error = {"type": "LeaseExpired", "message": message, "traceback": None}
        event = Event(
            experiment_id=current.experiment_id,
            campaign_id=current.campaign_id,
            type=EventType.LEASE_EXPIRED,
            actor="labledger",
            from_status=current.status.value,
            to_status=S.FAILED.value,
            at=now,
            data={**self._lease_data(current), "action": "fail", "error": error},
        )
        changes = {
            "status": S.FAILED,
            "ended_at": now,
            # the worker no longer holds it: its late reports answer lease_lost
            "worker_id": None,
            "lease_expires_at": None,
            "metadata": {**current.metadata, "error": error},
        }
        return changes, [event]

    def _orphan_changes(self, current: Experiment) -> Decision:
        event = Event(
            experiment_id=current.experiment_id,
            campaign_id=current.campaign_id,
            type=EventType.LEASE_EXPIRED,
            actor="labledger",
            from_status=current.status.value,
            to_status=current.status.value,
            at=self.clock(),
            data={**self._lease_data(current), "action": "release"},
        )
        return {"worker_id": None, "lease_expires_at": None}, [event]

    def requeue_orphan(self, experiment: Experiment, *, actor: str | None = None) -> Experiment:
        """Put a continued experiment whose worker is gone back in the queue.

        A queue experiment paused while held whose lease then ran out has no worker; continuing
        it makes it ``in_progress`` with nobody running it, so it goes back to the queue.
        """
        if not (
            experiment.status is S.IN_PROGRESS
            and experiment.worker_id is None
            and experiment.claimed_at is not None
        ):
            return experiment

        def decide(current: Experiment) -> Decision:
            if not (
                current.status is S.IN_PROGRESS
                and current.worker_id is None
                and current.claimed_at is not None
            ):
                return None
            return self._requeue_changes(current, EventType.STATUS_CHANGED, actor, "no worker")

        updated, _ = change_experiment(self.store, experiment.experiment_id, decide)
        return updated
