"""Use cases of the experiment service. Sees storage only through :class:`Store`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from labledger.core.conditional import Decision, change_experiment
from labledger.core.idempotency import IdempotencyClaim
from labledger.core.ids import new_ulid, utcnow
from labledger.core.lifecycle import (
    TERMINAL,
    Action,
    CampaignStatus,
    ExperimentStatus,
    check_transition,
    target_of,
)
from labledger.core.models import (
    Event,
    EventType,
    Experiment,
    ExperimentalCampaign,
    ExperimentQuery,
    ExperimentRegistration,
    ExperimentUpdate,
    JsonObject,
    OwnershipInfo,
)
from labledger.core.store import Store
from labledger.errors import Conflict, ExperimentNotFound, InvalidInput

__all__ = ["ExperimentService", "NewExperiment"]


class NewExperiment(NamedTuple):
    """One registration to store with others: who registers it, and the claim of the request's
    Idempotency-Key (if it had one)."""

    registration: ExperimentRegistration
    actor: str | None = None
    claim: IdempotencyClaim | None = None


T = TypeVar("T")


class ExperimentService:
    """Create, read, change and delete experiments and campaigns.

    ``default_ownership`` fills an experiment's ownership when the design has none (MADSci uses
    the server's own manager id). ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        store: Store,
        *,
        default_ownership: OwnershipInfo | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.default_ownership = default_ownership or OwnershipInfo()
        self.clock = clock
        #: called with every experiment this service creates or changes (campaigns follow
        #: their experiments through it); exceptions propagate to the caller
        self.observers: list[Callable[[Experiment], None]] = []

    def _notify(self, experiment: Experiment) -> Experiment:
        for observer in self.observers:
            observer(experiment)
        return experiment

    # ------------------------------------------------------------------ experiments

    def create_experiment(
        self,
        registration: ExperimentRegistration,
        *,
        actor: str | None = None,
        claim: IdempotencyClaim | None = None,
    ) -> Experiment:
        """Register an experiment: started at once (MADSci), or ``planned`` / ``queued``.

        ``actor`` is who acts, for the event log; ``claim`` ties the request's
        Idempotency-Key to the new experiment in the same transaction.
        """
        experiment, event = self._new_experiment(registration, actor)
        self.store.experiments.insert(experiment, [event], claim=claim)
        return self._notify(experiment)

    def create_experiments(self, requests: Sequence[NewExperiment]) -> list[Experiment | Exception]:
        """Register several experiments in one transaction, each with its Idempotency-Key.

        The answer has one entry per registration, in order: the experiment, or the error that
        registration alone would have raised. A registration that cannot be made (a cancelled
        campaign, say) fails alone; when the shared transaction fails (a bad record, or a key
        another request committed first), each experiment is stored in a transaction of its
        own, so that one fails alone too. Either way an experiment in the answer is stored
        (committed) with its key when this returns.
        """
        answers: list[Experiment | Exception] = []
        made: list[tuple[int, Experiment, Event, IdempotencyClaim | None]] = []
        for registration, actor, claim in requests:
            try:
                experiment, event = self._new_experiment(registration, actor)
            except Exception as exc:
                answers.append(exc)
                continue
            made.append((len(answers), experiment, event, claim))
            answers.append(experiment)
        try:
            if made:
                self.store.experiments.insert_many(
                    [m[1] for m in made], [m[2] for m in made], claims=[m[3] for m in made]
                )
        except Exception:  # stored one by one, each failure is its own registration's
            for index, experiment, event, claim in made:
                try:
                    self.store.experiments.insert(experiment, [event], claim=claim)
                except Exception as exc:
                    answers[index] = exc
        for index, experiment, _, _ in made:
            if answers[index] is experiment:
                try:
                    self._notify(experiment)
                except Exception as exc:
                    answers[index] = exc
        return answers

    def _new_experiment(
        self, registration: ExperimentRegistration, actor: str | None
    ) -> tuple[Experiment, Event]:
        """The experiment a registration makes and its ``created`` event, not yet stored."""
        now = self.clock()
        design = registration.experiment_design
        ownership = design.ownership_info
        if not ownership.compact():
            ownership = self.default_ownership
        campaign_id = registration.campaign_id or ownership.campaign_id
        if campaign_id is not None:
            campaign = self.store.campaigns.get(campaign_id)  # 404 when it does not exist
            if campaign.status is CampaignStatus.CANCELLED:
                raise Conflict(
                    f"Campaign {campaign_id} is cancelled; a new experiment cannot join it "
                    "(start a new campaign)",
                    campaign_id=campaign_id,
                    current_status=campaign.status.value,
                )
        status = ExperimentStatus(registration.status)
        experiment_id = new_ulid()
        experiment = Experiment(
            _id=experiment_id,
            status=status,
            experiment_design=design,
            ownership_info=ownership.model_copy(update={"experiment_id": experiment_id}),
            run_name=registration.run_name,
            run_description=registration.run_description,
            started_at=now if status is ExperimentStatus.IN_PROGRESS else None,
            created_at=now,
            updated_at=now,
            campaign_id=campaign_id,
            parameters={**design.parameters, **registration.parameters},
            metadata=registration.metadata,
            priority=registration.priority,
            not_before=registration.not_before,
        )
        event = Event(
            experiment_id=experiment_id,
            campaign_id=campaign_id,
            type=EventType.CREATED,
            actor=actor,
            to_status=status.value,
            at=now,
        )
        return experiment, event

    def get_experiment(self, experiment_id: str) -> Experiment:
        """The live (not trashed) experiment with this id."""
        return self.store.experiments.get(experiment_id)

    def list_experiments(self, query: ExperimentQuery) -> list[Experiment]:
        """Experiments matching the filters, newest first."""
        return self.store.experiments.find(query)

    def list_experiments_wire(self, query: ExperimentQuery) -> list[JsonObject]:
        """:meth:`list_experiments` as the JSON objects the API answers (no models in between)."""
        return self.store.experiments.find_wire(query)

    def count_experiments(self, query: ExperimentQuery | None = None) -> int:
        """How many experiments match."""
        return self.store.experiments.count(query)

    def apply_action(
        self,
        experiment_id: str,
        action: Action,
        *,
        end_status: ExperimentStatus | None = None,
        actor: str | None = None,
        reason: str | None = None,
        extra_changes: dict[str, Any] | None = None,
    ) -> Experiment:
        """Move an experiment as ``action`` asks, if the transition table allows it.

        Asking for the state it is in already changes nothing and returns it as it is.
        """

        def attempt(current: Experiment) -> tuple[dict[str, Any], list[Event]] | None:
            target = target_of(
                action, started=current.started_at is not None, end_status=end_status
            )
            if (
                action is Action.END
                and current.status is ExperimentStatus.CANCELLED
                and target in (ExperimentStatus.FAILED, ExperimentStatus.CANCELLED)
            ):
                # The run reports that it stopped, after it was cancelled from outside (MADSci's
                # ExperimentScript ends a run that raised ExperimentCancelledError as failed):
                # the cancellation stands, and the run's answer shows it.
                return None
            if not check_transition(
                current.status, target, entity_id=current.experiment_id, action=action.value
            ):
                return None
            now = self.clock()
            changes: dict[str, Any] = {"status": target, **(extra_changes or {})}
            if target is ExperimentStatus.IN_PROGRESS and current.started_at is None:
                changes["started_at"] = now
            if target in TERMINAL:
                changes["ended_at"] = now
            event = Event(
                experiment_id=current.experiment_id,
                campaign_id=current.campaign_id,
                type=EventType.STATUS_CHANGED,
                actor=actor,
                from_status=current.status.value,
                to_status=target.value,
                at=now,
                data={"action": action.value, **({"reason": reason} if reason else {})},
            )
            return changes, [event]

        return self._conditional(experiment_id, attempt)

    def update_experiment(
        self, experiment_id: str, patch: ExperimentUpdate, *, actor: str | None = None
    ) -> Experiment:
        """Replace the run name, description, parameters or metadata that ``patch`` gives."""
        changes = patch.model_dump(exclude_unset=True)
        if not changes:
            raise InvalidInput(
                "body: give at least one of run_name, run_description, parameters, metadata",
                field="body",
            )

        def attempt(current: Experiment) -> tuple[dict[str, Any], list[Event]]:
            event = Event(
                experiment_id=current.experiment_id,
                campaign_id=current.campaign_id,
                type=EventType.UPDATED,
                actor=actor,
                at=self.clock(),
                data={"fields": sorted(changes)},
            )
            return dict(changes), [event]

        return self._conditional(experiment_id, attempt)

    def delete_experiment(self, experiment_id: str, *, actor: str | None = None) -> Experiment:
        """Move an experiment to the trash; it keeps its record and events until purged."""

        def attempt(current: Experiment) -> tuple[dict[str, Any], list[Event]]:
            now = self.clock()
            event = Event(
                experiment_id=current.experiment_id,
                campaign_id=current.campaign_id,
                type=EventType.DELETED,
                actor=actor,
                at=now,
            )
            return {"deleted_at": now}, [event]

        return self._conditional(experiment_id, attempt)

    def restore_experiment(self, experiment_id: str, *, actor: str | None = None) -> Experiment:
        """Take an experiment back out of the trash."""

        def attempt(current: Experiment) -> tuple[dict[str, Any], list[Event]]:
            if current.deleted_at is None:
                raise Conflict(
                    f"Experiment {experiment_id} is not in the trash", experiment_id=experiment_id
                )
            event = Event(
                experiment_id=current.experiment_id,
                campaign_id=current.campaign_id,
                type=EventType.RESTORED,
                actor=actor,
                at=self.clock(),
            )
            return {"deleted_at": None}, [event]

        return self._conditional(experiment_id, attempt, include_deleted=True)

    def purge_experiment(self, experiment_id: str, *, actor: str | None = None) -> None:
        """Remove a trashed experiment and its events for good (admin)."""
        current = self.store.experiments.get(experiment_id, include_deleted=True)
        if current.deleted_at is None:
            raise Conflict(
                f"Experiment {experiment_id} is not in the trash; delete it first",
                experiment_id=experiment_id,
            )
        self.store.experiments.purge(
            experiment_id,
            Event(
                campaign_id=current.campaign_id,
                type=EventType.DELETED,
                actor=actor,
                at=self.clock(),
                data={"purged_experiment_id": experiment_id},
            ),
        )

    def list_trash(self, limit: int = 100, offset: int = 0) -> list[Experiment]:
        """Experiments in the trash, newest first."""
        return self.store.experiments.find(_trash_query(limit, offset))

    def list_trash_wire(self, limit: int = 100, offset: int = 0) -> list[JsonObject]:
        """:meth:`list_trash` as the JSON objects the API answers (no models in between)."""
        return self.store.experiments.find_wire(_trash_query(limit, offset))

    def import_experiment(
        self,
        experiment: Experiment,
        events: list[Event],
        *,
        recorder: dict[str, Any] | None = None,
        actor: str | None = None,
        claim: IdempotencyClaim | None = None,
    ) -> tuple[Experiment, bool]:
        """Keep a record made elsewhere (a recorder run) under its own id; safe to repeat.

        The first import stores the experiment with its events. A repeat with nothing new
        changes nothing; a later state of the same run (ended since, observations added) is
        applied if the transition table allows the status change. Only events not imported
        before are appended. Returns the stored experiment and whether anything changed.
        """
        metadata = {
            **experiment.metadata,
            **({"recorder": recorder} if recorder else {}),
            "import": {"event_count": len(events)},
        }
        stamped = [
            ev.model_copy(update={"experiment_id": experiment.experiment_id, "campaign_id": None})
            for ev in events
        ]
        try:
            current = self.store.experiments.get(experiment.experiment_id, include_deleted=True)
        except ExperimentNotFound:
            fresh = experiment.model_copy(
                update={
                    "metadata": metadata,
                    "version": 1,
                    "campaign_id": None,
                    "updated_at": self.clock(),
                }
            )
            imported = Event(
                experiment_id=experiment.experiment_id,
                type=EventType.UPDATED,
                actor=actor,
                at=self.clock(),
                data={"imported": True, "events": len(events)},
            )
            self.store.experiments.insert(fresh, [*stamped, imported], claim=claim)
            stored = self.store.experiments.get(experiment.experiment_id, include_deleted=True)
            return self._notify(stored), True

        def attempt(current: Experiment) -> tuple[dict[str, Any], list[Event]] | None:
            changes: dict[str, Any] = {}
            if experiment.status != current.status:
                check_transition(
                    current.status,
                    experiment.status,
                    entity_id=current.experiment_id,
                    action="import",
                )
                changes["status"] = experiment.status
            for name in ("run_name", "run_description", "parameters", "started_at", "ended_at"):
                if getattr(experiment, name) != getattr(current, name):
                    changes[name] = getattr(experiment, name)
            if metadata != current.metadata:
                changes["metadata"] = metadata
            if not changes:
                return None
            seen = int(current.metadata.get("import", {}).get("event_count", 0))
            return changes, stamped[seen:]

        before = current.version
        after = self._conditional(experiment.experiment_id, attempt, include_deleted=True)
        return after, after.version != before

    def _conditional(
        self,
        experiment_id: str,
        attempt: Callable[[Experiment], Decision],
        *,
        include_deleted: bool = False,
    ) -> Experiment:
        """Apply ``attempt`` as a conditional update; observers hear of every applied change."""
        experiment, changed = change_experiment(
            self.store, experiment_id, attempt, include_deleted=include_deleted
        )
        return self._notify(experiment) if changed else experiment

    # ------------------------------------------------------------------ campaigns

    def get_campaign(
        self, campaign_id: str, *, ids_limit: int | None = None, ids_offset: int = 0
    ) -> ExperimentalCampaign:
        """The campaign with its experiment ids (all, or the page asked for)."""
        return self.store.campaigns.get(campaign_id, ids_limit=ids_limit, ids_offset=ids_offset)

    def list_campaigns(
        self,
        limit: int = 100,
        offset: int = 0,
        *,
        ids_limit: int | None = None,
        ids_offset: int = 0,
    ) -> list[ExperimentalCampaign]:
        """Campaigns, newest first, each with its experiment ids (all, or the page asked for)."""
        return self.store.campaigns.find(limit, offset, ids_limit=ids_limit, ids_offset=ids_offset)

    def get_campaign_wire(
        self, campaign_id: str, *, ids_limit: int | None = None, ids_offset: int = 0
    ) -> JsonObject:
        """:meth:`get_campaign` as the JSON object the API answers (no model in between)."""
        return self.store.campaigns.get_wire(
            campaign_id, ids_limit=ids_limit, ids_offset=ids_offset
        )

    def list_campaigns_wire(
        self,
        limit: int = 100,
        offset: int = 0,
        *,
        ids_limit: int | None = None,
        ids_offset: int = 0,
    ) -> list[JsonObject]:
        """:meth:`list_campaigns` as the JSON objects the API answers (no models in between)."""
        return self.store.campaigns.find_wire(
            limit, offset, ids_limit=ids_limit, ids_offset=ids_offset
        )

    # ------------------------------------------------------------------ events

    def list_events(
        self,
        *,
        experiment_id: str | None = None,
        campaign_id: str | None = None,
        after_id: int = 0,
        limit: int = 1000,
    ) -> list[Event]:
        """The event log of an experiment or a campaign, oldest first."""
        if experiment_id is not None:
            self.store.experiments.get(experiment_id, include_deleted=True)
        if campaign_id is not None:
            self.store.campaigns.get(campaign_id)
        return self.store.events.find(
            experiment_id=experiment_id, campaign_id=campaign_id, after_id=after_id, limit=limit
        )


def _trash_query(limit: int, offset: int) -> ExperimentQuery:
    """The trash's list: trashed experiments, newest first."""
    return ExperimentQuery(limit=limit, offset=offset, deleted=True)
