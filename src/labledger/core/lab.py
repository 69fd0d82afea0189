"""All use cases over one store, wired together: the object the server and tests build."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from labledger.core.campaigns import CampaignService
from labledger.core.ids import utcnow
from labledger.core.models import Experiment, OwnershipInfo
from labledger.core.queue import QueueService
from labledger.core.reports import ReportService
from labledger.core.results import ResultService
from labledger.core.service import ExperimentService
from labledger.core.store import Store

__all__ = ["Lab"]


class Lab:
    """The lab's use cases sharing one :class:`Store`.

    ``experiments``, ``campaigns``, ``queue``, ``results`` and ``reports`` are the use cases;
    ``events``, ``tokens``, ``idempotency`` and ``metrics`` are the store's repositories that
    need no rule of their own (reading the event log, managing API tokens, remembering idempotent
    answers, keeping metric series).

    Campaigns follow their experiments: every change made through the experiment or queue
    service refreshes the experiment's campaign (active when one starts, completed when all
    are finished). Continuing a queue experiment whose worker is gone puts it back in the queue.
    """

    def __init__(
        self,
        store: Store,
        *,
        default_ownership: OwnershipInfo | None = None,
        lease_seconds: float = 60.0,
        max_attempts: int = 3,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.experiments = ExperimentService(
            store, default_ownership=default_ownership, clock=clock
        )
        self.default_ownership = self.experiments.default_ownership
        self.campaigns = CampaignService(store, clock=clock)
        self.queue = QueueService(
            store,
            lease_seconds=lease_seconds,
            max_attempts=max_attempts,
            clock=clock,
            after_change=self.campaigns.follow,
        )
        self.results = ResultService(store, clock=clock)
        self.reports = ReportService(store, clock=clock)
        self.events = store.events
        self.tokens = store.tokens
        self.idempotency = store.idempotency
        self.metrics = store.metrics
        self.experiments.observers.append(self._experiment_changed)

    def _experiment_changed(self, experiment: Experiment) -> None:
        experiment = self.queue.requeue_orphan(experiment)
        self.campaigns.follow(experiment)

    def ping(self) -> None:
        """Raise :class:`labledger.errors.StorageError` when the database cannot be reached."""
        self.store.ping()

    def sweep(self) -> int:
        """Expire stale leases; returns how many experiments were requeued or failed."""
        return len(self.queue.sweep_expired())
