"""The storage port: what the use cases need from a database, and nothing about how.

A :class:`Store` is a set of repositories over one database, one per kind of record.
:class:`labledger.storage.sql.SqlStore` implements it over SQLAlchemy Core for SQLite and
PostgreSQL. Every change is a *conditional* write (``expected_version``): a repository applies
it only if the record is still at that version, and reports ``None`` otherwise, so the use case
can re-read and decide again. That is how concurrent writers never lose an update.

A write that creates a record takes the request's :class:`IdempotencyClaim` (``claim=``) and
ties the key to the record in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from labledger.core.access import ApiToken, Scope
from labledger.core.idempotency import IdempotencyClaim, StoredAnswer
from labledger.core.metrics import MetricStore
from labledger.core.models import (
    Event,
    Experiment,
    ExperimentalCampaign,
    ExperimentQuery,
    JsonObject,
)
from labledger.core.records import Milestone, ResourceUse, Result

__all__ = [
    "Campaigns",
    "EventLog",
    "Experiments",
    "ForwardCursors",
    "IdempotencyKeys",
    "Queue",
    "Records",
    "Store",
    "StoredCursor",
    "Tokens",
]


class Experiments(Protocol):
    """Experiments, live and in the trash."""

    def count(self, query: ExperimentQuery | None = None) -> int:
        """How many experiments match ``query`` (all live ones when None)."""

    def insert(
        self,
        experiment: Experiment,
        events: Sequence[Event],
        *,
        claim: IdempotencyClaim | None = None,
    ) -> None:
        """Store a new experiment and its first events in one transaction."""

    def insert_many(
        self,
        experiments: Sequence[Experiment],
        events: Sequence[Event],
        *,
        claims: Sequence[IdempotencyClaim | None] = (),
    ) -> None:
        """Store new experiments and their first events, all in one transaction; ``claims``
        (one per experiment, when given) tie Idempotency-Keys to them as :meth:`insert` does."""

    def get(self, experiment_id: str, *, include_deleted: bool = False) -> Experiment:
        """The experiment, or raise :class:`labledger.errors.ExperimentNotFound`."""

    def find(self, query: ExperimentQuery) -> list[Experiment]:
        """Experiments matching ``query``, in its order."""

    def find_wire(self, query: ExperimentQuery) -> list[JsonObject]:
        """:meth:`find` as the experiments' JSON objects (``experiment_to_wire`` of each),
        made without the models."""

    def update(
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

    def purge(self, experiment_id: str, event: Event) -> None:
        """Remove a trashed experiment and its records for good (the purge itself is logged)."""


class Campaigns(Protocol):
    """Campaigns and the experiments they hold."""

    def insert(
        self,
        campaign: ExperimentalCampaign,
        events: Sequence[Event],
        experiments: Sequence[Experiment] = (),
        *,
        claim: IdempotencyClaim | None = None,
    ) -> None:
        """Store a new campaign, with new ``experiments`` of it, in one transaction.

        Its declared experiment ids are linked when they exist.
        """

    def get(
        self, campaign_id: str, *, ids_limit: int | None = None, ids_offset: int = 0
    ) -> ExperimentalCampaign:
        """The campaign with its experiment ids, or raise ``CampaignNotFound``.

        ``ids_limit`` ids from ``ids_offset`` on (all when None); ``experiment_count`` says
        how many there are in all.
        """

    def find(
        self, limit: int, offset: int, *, ids_limit: int | None = None, ids_offset: int = 0
    ) -> list[ExperimentalCampaign]:
        """Campaigns, newest first, each with its experiment ids (paged as in :meth:`get`)."""

    def get_wire(
        self, campaign_id: str, *, ids_limit: int | None = None, ids_offset: int = 0
    ) -> JsonObject:
        """:meth:`get` as the campaign's JSON object (``campaign_to_wire`` of it), made
        without the model."""

    def find_wire(
        self, limit: int, offset: int, *, ids_limit: int | None = None, ids_offset: int = 0
    ) -> list[JsonObject]:
        """:meth:`find` as the campaigns' JSON objects (``campaign_to_wire`` of each), made
        without the models."""

    def update(
        self,
        campaign_id: str,
        expected_version: int,
        changes: dict[str, Any],
        events: Sequence[Event],
    ) -> ExperimentalCampaign | None:
        """Conditional update of a campaign, as :meth:`Experiments.update`."""

    def status_of(self, campaign_id: str) -> str:
        """A campaign's status alone (cheap: no experiment ids); ``CampaignNotFound`` if none."""

    def status_counts(self, campaign_id: str) -> dict[str, int]:
        """How many live experiments of the campaign are in each status."""


class EventLog(Protocol):
    """The append-only log every change writes to (appends happen inside the changes; what
    happens outside the lab's own changes, such as a workflow acted on, is appended here)."""

    def append(self, events: Sequence[Event]) -> None:
        """Append ``events`` in one transaction."""

    def find(
        self,
        *,
        experiment_id: str | None = None,
        campaign_id: str | None = None,
        after_id: int = 0,
        limit: int = 1000,
        since: datetime | None = None,
    ) -> list[Event]:
        """Events in the order they were written, after ``after_id``."""

    def last_id(self) -> int:
        """The id of the newest event (0 when there is none)."""


class Queue(Protocol):
    """The scheduling queue: atomic claims and lease bookkeeping."""

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

    def expired_leases(self, now: datetime, limit: int) -> list[Experiment]:
        """Experiments in progress or paused whose worker's lease ended before ``now``."""

    def find(
        self, statuses: Sequence[str], *, campaign_id: str | None, limit: int, offset: int
    ) -> list[Experiment]:
        """Live experiments in ``statuses``: queued ones in claim order, others by claim time."""


class Records(Protocol):
    """What experiments produce: results, milestones and resource uses."""

    def put_results(
        self,
        results: Sequence[Result],
        changes: dict[str, Any] | None,
        events: Sequence[Event],
        *,
        worker_id: str | None = None,
        claim: IdempotencyClaim | None = None,
    ) -> list[Result]:
        """Store results (a name given again replaces its result) and append ``events``.

        With ``worker_id``, in the same transaction: the worker must hold the experiment, else
        :class:`labledger.errors.LeaseLost` and nothing is stored.
        """

    def results(
        self, *, experiment_id: str | None = None, campaign_id: str | None = None
    ) -> list[Result]:
        """Results of one experiment (by name) or of every experiment of a campaign."""

    def result(self, experiment_id: str, name: str) -> Result:
        """One result, or raise ``NotFound`` naming it."""

    def add_milestone(
        self,
        milestone: Milestone,
        events: Sequence[Event],
        *,
        worker_id: str | None = None,
        claim: IdempotencyClaim | None = None,
    ) -> Milestone:
        """Store a milestone and append ``events``; returns it with its id.

        With ``worker_id`` the worker must hold the experiment (as for :meth:`put_results`).
        """

    def milestones(self, experiment_id: str) -> list[Milestone]:
        """An experiment's milestones, oldest first."""

    def add_resource_uses(
        self, uses: Sequence[ResourceUse], events: Sequence[Event]
    ) -> list[ResourceUse]:
        """Store resource uses and append ``events``."""

    def resource_uses(
        self,
        *,
        experiment_id: str | None = None,
        resource_id: str | None = None,
        limit: int = 1000,
    ) -> list[ResourceUse]:
        """Uses of one experiment, or of one resource across experiments, oldest first."""


@dataclass(frozen=True)
class StoredCursor:
    """Where forwarding to one target has got to."""

    target: str
    last_event_id: int
    failures: int
    last_error: str | None
    next_attempt_at: datetime | None


class ForwardCursors(Protocol):
    """How far each forwarding target (webhook, event manager) has got in the event log."""

    def get(self, target: str) -> StoredCursor | None:
        """The cursor of a forwarding target (None before its first forward)."""

    def claim(self, target: str, now: datetime, until: datetime) -> bool:
        """Take the right to forward to ``target`` until ``until`` (one server replica at a
        time): True when its cursor was free (no claim or backoff in force at ``now``)."""

    def save(
        self,
        target: str,
        last_event_id: int,
        failures: int,
        last_error: str | None,
        next_attempt_at: datetime | None,
    ) -> None:
        """Create or replace the cursor of a forwarding target."""


class Tokens(Protocol):
    """API tokens, kept as the hash of their secret."""

    def create(
        self,
        name: str,
        scope: Scope | str,
        *,
        note: str | None = None,
        created_by: str | None = None,
    ) -> tuple[ApiToken, str]:
        """Make a token; return it and its secret (which is stored only as a hash)."""

    def list(self, *, include_revoked: bool = True) -> list[ApiToken]:
        """Every token, oldest first."""

    def get(self, name: str) -> ApiToken:
        """One token by name, or NotFound."""

    def revoke(self, name: str) -> ApiToken:
        """Revoke a token at once (revoking a revoked token changes nothing)."""

    def active(self) -> dict[str, tuple[str, Scope]]:
        """Every active token: secret hash -> (name, scope)."""

    def touch(self, names: set[str], at: datetime) -> None:
        """Record that these tokens were used at ``at``."""


class IdempotencyKeys(Protocol):
    """Remembered answers of requests that carried an Idempotency-Key."""

    def find(self, principal: str, key: str) -> StoredAnswer | None:
        """The remembered answer for this key, if the key was used."""

    def store_answers(self, answers: list[tuple[str, str, int, str]]) -> None:
        """Keep several answers (principal, key, status, body); a key keeps its first."""

    def forget(self, principal: str, key: str) -> None:
        """Drop one remembered key."""

    def forget_before(self, before: datetime) -> int:
        """Drop keys remembered since before ``before``; return how many."""


class Store(Protocol):
    """Every repository the use cases need, over one database."""

    @property
    def experiments(self) -> Experiments: ...
    @property
    def campaigns(self) -> Campaigns: ...
    @property
    def events(self) -> EventLog: ...
    @property
    def queue(self) -> Queue: ...
    @property
    def records(self) -> Records: ...
    @property
    def forward_cursors(self) -> ForwardCursors: ...
    @property
    def tokens(self) -> Tokens: ...
    @property
    def idempotency(self) -> IdempotencyKeys: ...
    @property
    def metrics(self) -> MetricStore: ...

    def ping(self) -> None:
        """Raise :class:`labledger.errors.StorageError` when the database cannot be reached."""
