"""The storage port: what the use cases need from a database, and nothing about how.

:mod:`labledger.storage.sql` implements it over SQLAlchemy Core for SQLite and PostgreSQL.
Every change is a *conditional* write (``expected_version``): a store applies it only if the
record is still at that version, and reports ``None`` otherwise, so the service can re-read and
decide again. That is how concurrent writers never lose an update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from labledger.core.models import Event, Experiment, ExperimentalCampaign, ExperimentQuery
from labledger.core.records import Milestone, ResourceUse, Result

__all__ = ["CampaignQuery", "ForwardCursor", "LabStore", "QueueStore", "RecordStore", "Store"]


class CampaignQuery(Protocol):
    """Filters for campaigns (kept as a protocol so the core owns no query builder)."""

    limit: int
    offset: int


class Store(Protocol):
    """Persistence of experiments, campaigns and the event log."""

    # ---- health
    def ping(self) -> None:
        """Raise :class:`labledger.errors.StorageError` when the database cannot be reached."""

    def count_experiments(self, query: ExperimentQuery | None = None) -> int:
        """How many experiments match ``query`` (all live ones when None)."""

    # ---- experiments
    def insert_experiment(self, experiment: Experiment, events: Sequence[Event]) -> None:
        """Store a new experiment and its first events in one transaction."""

    def get_experiment(self, experiment_id: str, *, include_deleted: bool = False) -> Experiment:
        """The experiment, or raise :class:`labledger.errors.ExperimentNotFound`."""

    def list_experiments(self, query: ExperimentQuery) -> list[Experiment]:
        """Experiments matching ``query``, newest first."""

    def update_experiment(
        self,
        experiment_id: str,
        expected_version: int,
        changes: dict[str, Any],
        events: Sequence[Event],
    ) -> Experiment | None:
        """Apply ``changes`` if the experiment is still at ``expected_version``.

        Bumps the version and ``updated_at``, appends ``events`` in the same transaction and
        returns the new record; returns None when another writer got there first.
        """

    def purge_experiment(self, experiment_id: str, event: Event) -> None:
        """Remove a trashed experiment and its events for good (the purge itself is logged)."""

    # ---- campaigns
    def insert_campaign(
        self,
        campaign: ExperimentalCampaign,
        events: Sequence[Event],
        experiments: Sequence[Experiment] = (),
    ) -> None:
        """Store a new campaign, with new ``experiments`` of it, in one transaction.

        Its declared experiment ids are linked when they exist.
        """

    def get_campaign(self, campaign_id: str) -> ExperimentalCampaign:
        """The campaign with its experiment ids, or raise ``CampaignNotFound``."""

    def list_campaigns(self, limit: int, offset: int) -> list[ExperimentalCampaign]:
        """Campaigns, newest first, each with its experiment ids."""

    def update_campaign(
        self,
        campaign_id: str,
        expected_version: int,
        changes: dict[str, Any],
        events: Sequence[Event],
    ) -> ExperimentalCampaign | None:
        """Conditional update of a campaign, as :meth:`update_experiment`."""

    # ---- events
    def append_events(self, events: Sequence[Event]) -> None:
        """Append events to the log."""

    def list_events(
        self,
        *,
        experiment_id: str | None = None,
        campaign_id: str | None = None,
        after_id: int = 0,
        limit: int = 1000,
        since: datetime | None = None,
    ) -> list[Event]:
        """Events in the order they were written, after ``after_id``."""


class QueueStore(Protocol):
    """The scheduling queue: atomic claims and lease bookkeeping (revision 0002)."""

    def claim_next(
        self,
        worker_id: str,
        now: datetime,
        lease_expires_at: datetime,
        *,
        campaign_id: str | None,
        make_events: Callable[[Experiment], list[Event]],
    ) -> Experiment | None:
        """Claim the next claimable queued experiment for ``worker_id`` in one transaction.

        Claimable: ``queued``, not in the trash, ``not_before`` passed, its campaign (if any)
        neither paused nor finished. Highest priority first, then oldest. The claim sets status
        ``in_progress``, the worker, the lease, ``attempts + 1`` (and ``started_at`` if unset),
        and appends ``make_events(claimed)``. Concurrent claimers never get the same experiment
        (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: the write lock). None when none is left.
        """

    def insert_experiments(
        self, experiments: Sequence[Experiment], events: Sequence[Event]
    ) -> None:
        """Store many new experiments and their events in one transaction (a sweep)."""

    def list_expired_leases(self, now: datetime, limit: int) -> list[Experiment]:
        """Experiments in progress or paused whose worker's lease ended before ``now``."""

    def list_queue(
        self, statuses: Sequence[str], *, campaign_id: str | None, limit: int, offset: int
    ) -> list[Experiment]:
        """Live experiments in ``statuses``: queued ones in claim order, others by claim time."""

    def campaign_status_of(self, campaign_id: str) -> str:
        """A campaign's status alone (cheap: no experiment ids); ``CampaignNotFound`` if none."""

    def campaign_status_counts(self, campaign_id: str) -> dict[str, int]:
        """How many live experiments of the campaign are in each status."""

    def max_event_id(self) -> int:
        """The id of the newest event (0 when there is none)."""


class ForwardCursor(Protocol):
    """Where forwarding to one target has got to (read-only: the store changes it)."""

    @property
    def target(self) -> str: ...
    @property
    def last_event_id(self) -> int: ...
    @property
    def failures(self) -> int: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def next_attempt_at(self) -> datetime | None: ...


class RecordStore(Protocol):
    """Results, milestones, resource uses and forwarding cursors (revision 0002)."""

    def put_results(
        self,
        results: Sequence[Result],
        changes: dict[str, Any] | None,
        events: Sequence[Event],
        *,
        worker_id: str | None = None,
    ) -> list[Result]:
        """Store results (a name given again replaces its result) and append ``events``.

        With ``worker_id``, in the same transaction: the worker must hold the experiment, else
        :class:`labledger.errors.LeaseLost` and nothing is stored.
        """

    def list_results(
        self, *, experiment_id: str | None = None, campaign_id: str | None = None
    ) -> list[Result]:
        """Results of one experiment (by name) or of every experiment of a campaign."""

    def get_result(self, experiment_id: str, name: str) -> Result:
        """One result, or raise ``NotFound`` naming it."""

    def add_milestone(
        self, milestone: Milestone, events: Sequence[Event], *, worker_id: str | None = None
    ) -> Milestone:
        """Store a milestone and append ``events``; returns it with its id.

        With ``worker_id`` the worker must hold the experiment (as for :meth:`put_results`).
        """

    def list_milestones(self, experiment_id: str) -> list[Milestone]:
        """An experiment's milestones, oldest first."""

    def add_resource_uses(
        self, uses: Sequence[ResourceUse], events: Sequence[Event]
    ) -> list[ResourceUse]:
        """Store resource uses and append ``events``."""

    def list_resource_uses(
        self,
        *,
        experiment_id: str | None = None,
        resource_id: str | None = None,
        limit: int = 1000,
    ) -> list[ResourceUse]:
        """Uses of one experiment, or of one resource across experiments, oldest first."""

    def get_forward_cursor(self, target: str) -> ForwardCursor | None:
        """The cursor of a forwarding target (None before its first forward)."""

    def claim_forward_cursor(self, target: str, now: datetime, until: datetime) -> bool:
        """Take the right to forward to ``target`` until ``until`` (one server replica at a
        time): True when its cursor was free (no claim or backoff in force at ``now``)."""

    def save_forward_cursor(
        self,
        target: str,
        last_event_id: int,
        failures: int,
        last_error: str | None,
        next_attempt_at: datetime | None,
    ) -> None:
        """Create or replace the cursor of a forwarding target."""


class LabStore(Store, QueueStore, RecordStore, Protocol):
    """Everything the campaign, queue, result and report use cases need."""
