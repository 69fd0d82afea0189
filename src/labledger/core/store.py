"""The storage port: what the use cases need from a database, and nothing about how.

:mod:`labledger.storage.sql` implements it over SQLAlchemy Core for SQLite and PostgreSQL.
Every change is a *conditional* write (``expected_version``): a store applies it only if the
record is still at that version, and reports ``None`` otherwise, so the service can re-read and
decide again. That is how concurrent writers never lose an update.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from labledger.core.models import Event, Experiment, ExperimentalCampaign, ExperimentQuery

__all__ = ["CampaignQuery", "Store"]


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
    def insert_campaign(self, campaign: ExperimentalCampaign, events: Sequence[Event]) -> None:
        """Store a new campaign (its declared experiment ids are linked when they exist)."""

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
