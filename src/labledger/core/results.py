"""Results, progress, milestones and resource uses of experiments (use cases).

Every change appends an event (``result_added``, ``progress``, ``milestone``, ``resource_used``)
in the same transaction as the record. File content never passes through here: the server
streams it into the content-addressed store and hands over its digest and size.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from labledger.core.conditional import Decision, change_experiment
from labledger.core.idempotency import IdempotencyClaim
from labledger.core.ids import utcnow
from labledger.core.lifecycle import ExperimentStatus
from labledger.core.models import Event, EventType, Experiment
from labledger.core.records import (
    MAX_VALUE_BYTES,
    Milestone,
    MilestoneCreate,
    ProgressUpdate,
    ResourceUse,
    ResourceUseCreate,
    Result,
    ResultKind,
    check_result_name,
)
from labledger.core.store import Store
from labledger.errors import InvalidInput, LeaseLost, PayloadTooLarge

__all__ = ["ResultService"]

#: value results up to this size are copied into their event (larger ones are named only)
EVENT_VALUE_BYTES = 2_000


class ResultService:
    """Attach results, progress, milestones and resource uses to experiments."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock

    # ------------------------------------------------------------------ results

    def add_values(
        self,
        experiment_id: str,
        values: Mapping[str, Any],
        *,
        actor: str | None = None,
        worker_id: str | None = None,
        claim: IdempotencyClaim | None = None,
    ) -> list[Result]:
        """Store named values; a name given again replaces its earlier value.

        With ``worker_id`` the worker must still hold the experiment: a worker whose lease
        expired (and whose experiment another worker now runs) gets :class:`LeaseLost`.
        """
        experiment = self.store.experiments.get(experiment_id)
        self._check_holder(experiment, worker_id)
        now = self.clock()
        results: list[Result] = []
        events: list[Event] = []
        for name, value in values.items():
            check_result_name(name, field=f"values.{name}")
            try:
                encoded = json.dumps(value, allow_nan=False, default=_reject)
            except ValueError:
                raise InvalidInput(
                    f"values.{name}: NaN and infinity are not JSON; give a number or null",
                    field=f"values.{name}",
                ) from None
            if len(encoded) > MAX_VALUE_BYTES:
                raise PayloadTooLarge(
                    f"values.{name}: {len(encoded)} bytes of JSON, at most {MAX_VALUE_BYTES}; "
                    "upload it as a file result instead"
                )
            results.append(
                Result(
                    experiment_id=experiment_id,
                    campaign_id=experiment.campaign_id,
                    name=name,
                    kind=ResultKind.VALUE,
                    value=value,
                    actor=actor,
                    created_at=now,
                )
            )
            data: dict[str, Any] = {"name": name, "kind": "value"}
            if len(encoded) <= EVENT_VALUE_BYTES:
                data["value"] = value
            events.append(self._event(experiment, EventType.RESULT_ADDED, actor, now, data))
        return self.store.records.put_results(
            results, None, events, worker_id=worker_id, claim=claim
        )

    def add_file(
        self,
        experiment_id: str,
        name: str,
        *,
        digest: str,
        size: int,
        media_type: str | None,
        filename: str | None,
        actor: str | None = None,
        worker_id: str | None = None,
        claim: IdempotencyClaim | None = None,
    ) -> Result:
        """Record a file result whose content is stored under ``digest``.

        With ``worker_id`` the worker must still hold the experiment (else :class:`LeaseLost`).
        """
        check_result_name(name)
        experiment = self.store.experiments.get(experiment_id)
        self._check_holder(experiment, worker_id)
        now = self.clock()
        result = Result(
            experiment_id=experiment_id,
            campaign_id=experiment.campaign_id,
            name=name,
            kind=ResultKind.FILE,
            digest=digest,
            size=size,
            media_type=media_type,
            filename=filename,
            actor=actor,
            created_at=now,
        )
        data = {"name": name, "kind": "file", "digest": digest, "size": size, "filename": filename}
        event = self._event(experiment, EventType.RESULT_ADDED, actor, now, data)
        return self.store.records.put_results(
            [result], None, [event], worker_id=worker_id, claim=claim
        )[0]

    def list_results(self, experiment_id: str) -> list[Result]:
        """An experiment's results, by name."""
        self.store.experiments.get(experiment_id)
        return self.store.records.results(experiment_id=experiment_id)

    def get_result(self, experiment_id: str, name: str) -> Result:
        """One named result."""
        self.store.experiments.get(experiment_id)
        return self.store.records.result(experiment_id, name)

    # ------------------------------------------------------------------ progress

    def set_progress(
        self, experiment_id: str, update: ProgressUpdate, *, actor: str | None = None
    ) -> Experiment:
        """Record how far an experiment has got (an event, and the experiment's ``progress``)."""

        def decide(current: Experiment) -> Decision:
            now = self.clock()
            data: dict[str, Any] = {"progress": update.progress}
            if update.message:
                data["message"] = update.message
            event = self._event(current, EventType.PROGRESS, actor, now, data)
            return {"progress": update.progress}, [event]

        experiment, _ = change_experiment(self.store, experiment_id, decide)
        return experiment

    def add_milestone(
        self,
        experiment_id: str,
        create: MilestoneCreate,
        *,
        actor: str | None = None,
        claim: IdempotencyClaim | None = None,
    ) -> Milestone:
        """Record a checkpoint (name, time, data); a resumed run reads the latest one back.

        With ``create.worker_id`` the worker must still hold the experiment (else
        :class:`LeaseLost`).
        """
        experiment = self.store.experiments.get(experiment_id)
        self._check_holder(experiment, create.worker_id)
        now = self.clock()
        milestone = Milestone(
            experiment_id=experiment_id,
            name=create.name,
            progress=create.progress,
            data=create.data,
            actor=actor,
            at=now,
        )
        data: dict[str, Any] = {"name": create.name}
        if create.progress is not None:
            data["progress"] = create.progress
        event = self._event(experiment, EventType.MILESTONE, actor, now, data)
        return self.store.records.add_milestone(
            milestone, [event], worker_id=create.worker_id, claim=claim
        )

    def list_milestones(self, experiment_id: str) -> list[Milestone]:
        """An experiment's milestones, oldest first."""
        self.store.experiments.get(experiment_id)
        return self.store.records.milestones(experiment_id)

    def last_milestone(self, experiment_id: str) -> Milestone | None:
        """The checkpoint to resume from (None before the first)."""
        found = self.list_milestones(experiment_id)
        return found[-1] if found else None

    # ------------------------------------------------------------------ resources

    def add_resources(
        self,
        experiment_id: str,
        uses: list[ResourceUseCreate],
        *,
        actor: str | None = None,
    ) -> list[ResourceUse]:
        """Record the samples, consumables and instruments an experiment used."""
        if not uses:
            raise InvalidInput("resources: give at least one resource", field="resources")
        experiment = self.store.experiments.get(experiment_id)
        now = self.clock()
        records = [
            ResourceUse(
                **use.model_dump(),
                experiment_id=experiment_id,
                campaign_id=experiment.campaign_id,
                actor=actor,
                at=now,
            )
            for use in uses
        ]
        events = [
            self._event(
                experiment,
                EventType.RESOURCE_USED,
                actor,
                now,
                {"resource_id": u.resource_id, "resource_type": u.resource_type.value},
            )
            for u in uses
        ]
        return self.store.records.add_resource_uses(records, events)

    def list_resources(self, experiment_id: str) -> list[ResourceUse]:
        """What an experiment used."""
        self.store.experiments.get(experiment_id)
        return self.store.records.resource_uses(experiment_id=experiment_id)

    def uses_of(self, resource_id: str, limit: int = 1000) -> list[ResourceUse]:
        """Every recorded use of one resource (which experiments used sample X)."""
        return self.store.records.resource_uses(resource_id=resource_id, limit=limit)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _check_holder(experiment: Experiment, worker_id: str | None) -> None:
        """Refuse a report from a worker that does not hold the experiment (checked again, in
        the writing transaction, by the store)."""
        if worker_id is not None and (
            experiment.worker_id != worker_id
            or experiment.status not in (ExperimentStatus.IN_PROGRESS, ExperimentStatus.PAUSED)
        ):
            raise LeaseLost(
                experiment.experiment_id, worker_id, experiment.worker_id, experiment.status.value
            )

    @staticmethod
    def _event(
        experiment: Experiment,
        kind: EventType,
        actor: str | None,
        at: datetime,
        data: dict[str, Any],
    ) -> Event:
        return Event(
            experiment_id=experiment.experiment_id,
            campaign_id=experiment.campaign_id,
            type=kind,
            actor=actor,
            at=at,
            data=data,
        )


def _reject(value: object) -> Any:
    raise InvalidInput(
        f"values: {type(value).__name__} is not JSON (give numbers, text, lists or objects)",
        field="values",
    )
