"""Campaigns as first-class objects: created from a spec (``*.campaign.yaml``), with a lifecycle.

A campaign is ``planned`` until one of its experiments starts (then ``active``), and
``completed`` once every experiment is finished. Pausing it pauses its running experiments and
holds its queue (claims skip it); resuming continues the experiments the pause stopped.
Cancelling it cancels every unfinished experiment. A spec may carry a parameter sweep (a grid,
a list, or both) that becomes one experiment per point, all created in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from labledger.core.conditional import Decision, change_experiment
from labledger.core.idempotency import IdempotencyClaim
from labledger.core.ids import new_ulid, utcnow
from labledger.core.lifecycle import (
    TERMINAL,
    CampaignStatus,
    ExperimentStatus,
    check_campaign_transition,
    check_transition,
)
from labledger.core.models import (
    Event,
    EventType,
    Experiment,
    ExperimentalCampaign,
    OwnershipInfo,
)
from labledger.core.specs import MAX_SWEEP, CampaignSpec, ExperimentSpec, SweepSpec
from labledger.core.store import Store
from labledger.errors import ConcurrentUpdate, ExperimentNotFound, IllegalTransition, InvalidInput

__all__ = ["MAX_SWEEP", "CampaignService", "CampaignSpec", "ExperimentSpec", "SweepSpec"]

S = ExperimentStatus
C = CampaignStatus
JsonObject = dict[str, Any]


class CampaignService:
    """Campaign use cases over a :class:`Store`."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock

    # ------------------------------------------------------------------ creation

    def create(
        self,
        spec: CampaignSpec,
        *,
        campaign_id: str | None = None,
        experiment_ids: Sequence[str] = (),
        actor: str | None = None,
        default_ownership: OwnershipInfo | None = None,
        claim: IdempotencyClaim | None = None,
    ) -> ExperimentalCampaign:
        """Create a campaign and, in one transaction, every experiment its spec lists.

        ``campaign_id`` keeps an id the client chose (MADSci clients make their own);
        ``experiment_ids`` links existing live experiments to the new campaign.
        """
        now = self.clock()
        specs = spec.experiment_specs()
        for experiment_id in experiment_ids:
            try:
                self.store.experiments.get(experiment_id)
            except ExperimentNotFound:
                raise InvalidInput(
                    f"experiment_ids: no experiment {experiment_id} on this server",
                    field="experiment_ids",
                ) from None
        ownership = spec.ownership_info if spec.ownership_info.compact() else None
        campaign = ExperimentalCampaign(
            campaign_id=campaign_id or new_ulid(),
            campaign_name=spec.campaign_name,
            experiment_ids=list(experiment_ids),
            campaign_description=spec.campaign_description,
            ownership_info=ownership or default_ownership or OwnershipInfo(),
            parameters=spec.parameters,
            metadata=spec.metadata,
            created_at=now,
            updated_at=now,
        )
        created = Event(
            campaign_id=campaign.campaign_id,
            type=EventType.CAMPAIGN_CREATED,
            actor=actor,
            to_status=C.PLANNED.value,
            at=now,
            data={"campaign_name": campaign.campaign_name, "experiments": len(specs)},
        )
        experiments: list[Experiment] = []
        events: list[Event] = []
        if specs:
            assert spec.experiment_design is not None  # checked by the spec
            experiments, events = self._experiments(campaign, spec, specs, now, actor)
        # one transaction: a crash never leaves a campaign without the experiments it lists
        self.store.campaigns.insert(campaign, [created, *events], experiments, claim=claim)
        return self.store.campaigns.get(campaign.campaign_id)

    def _experiments(
        self,
        campaign: ExperimentalCampaign,
        spec: CampaignSpec,
        specs: list[ExperimentSpec],
        now: datetime,
        actor: str | None,
    ) -> tuple[list[Experiment], list[Event]]:
        design = spec.experiment_design
        assert design is not None
        status = S(spec.status)
        base_ownership = design.ownership_info.compact() or campaign.ownership_info.compact()
        experiments: list[Experiment] = []
        events: list[Event] = []
        for index, item in enumerate(specs):
            experiment_id = new_ulid()
            ownership = OwnershipInfo.model_validate(
                {
                    **base_ownership,
                    "campaign_id": campaign.campaign_id,
                    "experiment_id": experiment_id,
                }
            )
            experiments.append(
                Experiment(
                    _id=experiment_id,
                    status=status,
                    experiment_design=design,
                    ownership_info=ownership,
                    run_name=item.run_name or f"{design.experiment_name} #{index + 1}",
                    run_description=item.run_description,
                    created_at=now,
                    updated_at=now,
                    campaign_id=campaign.campaign_id,
                    parameters={**design.parameters, **item.parameters},
                    metadata={"campaign_index": index},
                    priority=item.priority,
                    not_before=item.not_before,
                )
            )
            events.append(
                Event(
                    experiment_id=experiment_id,
                    campaign_id=campaign.campaign_id,
                    type=EventType.CREATED,
                    actor=actor,
                    to_status=status.value,
                    at=now,
                    data={"campaign_index": index},
                )
            )
        return experiments, events

    # ------------------------------------------------------------------ lifecycle

    def pause(self, campaign_id: str, *, actor: str | None = None) -> ExperimentalCampaign:
        """Hold the campaign's queue and pause its running experiments."""
        campaign = self._move(campaign_id, C.PAUSED, "pause", actor)
        for exp in self._experiments_in(campaign_id, [S.IN_PROGRESS]):
            self._move_experiment(exp.experiment_id, S.PAUSED, "pause", campaign_id, actor)
        return self.store.campaigns.get(campaign.campaign_id)

    def resume(self, campaign_id: str, *, actor: str | None = None) -> ExperimentalCampaign:
        """Release the queue and return each experiment the campaign's pause stopped to the
        state it was paused from (one run directly by an application goes on running; it is
        never sent to the queue, where a worker could run it a second time)."""
        self._move(campaign_id, C.ACTIVE, "resume", actor)
        for exp in self._experiments_in(campaign_id, [S.PAUSED, S.QUEUED]):
            pause = self._pause_of(exp.experiment_id)
            if pause is None or pause.data.get("campaign_id") != campaign_id:
                continue
            target = S(pause.from_status) if pause.from_status else S.IN_PROGRESS
            self._move_experiment(exp.experiment_id, target, "resume", campaign_id, actor)
        return self.refresh(campaign_id)

    def cancel(self, campaign_id: str, *, actor: str | None = None) -> ExperimentalCampaign:
        """End the campaign for good; every unfinished experiment is cancelled."""
        self._move(campaign_id, C.CANCELLED, "cancel", actor)
        unfinished = [s for s in S if s not in TERMINAL]
        for exp in self._experiments_in(campaign_id, unfinished):
            self._move_experiment(exp.experiment_id, S.CANCELLED, "cancel", campaign_id, actor)
        return self.store.campaigns.get(campaign_id)

    def refresh(self, campaign_id: str) -> ExperimentalCampaign:
        """Make the campaign's status follow its experiments (active, then completed)."""
        for _ in range(10):
            campaign = self.store.campaigns.get(campaign_id)
            counts = self.store.campaigns.status_counts(campaign_id)
            total = sum(counts.values())
            finished = sum(counts.get(s.value, 0) for s in TERMINAL)
            started = finished + counts.get(S.IN_PROGRESS, 0) + counts.get(S.PAUSED, 0)
            target: C | None = None
            if total and finished == total and campaign.status in (C.PLANNED, C.ACTIVE, C.PAUSED):
                target = C.COMPLETED
            elif campaign.status is C.PLANNED and started:
                target = C.ACTIVE
            elif campaign.status is C.COMPLETED and finished < total:
                target = C.ACTIVE  # reopened: a new experiment joined
            if target is None:
                return campaign
            if self._try_move(campaign, target, "auto", "labledger", counts) is not None:
                return self.store.campaigns.get(campaign_id)
        return self.store.campaigns.get(campaign_id)

    def follow(self, experiment: Experiment) -> None:
        """Observer for experiment changes: keep the experiment's campaign status in step."""
        if experiment.campaign_id is None:
            return
        if experiment.status not in TERMINAL:
            # Only a first start (planned -> active) or a new experiment joining a completed
            # campaign (completed -> active) can change the campaign: skip the counts for every
            # other change, so claims of big campaigns stay cheap.
            status = self.store.campaigns.status_of(experiment.campaign_id)
            started = experiment.status in (S.IN_PROGRESS, S.PAUSED)
            if not ((started and status == C.PLANNED) or status == C.COMPLETED):
                return
        self.refresh(experiment.campaign_id)

    # ------------------------------------------------------------------ helpers

    def _experiments_in(self, campaign_id: str, statuses: list[S]) -> list[Experiment]:
        return self.store.queue.find(
            [s.value for s in statuses], campaign_id=campaign_id, limit=0, offset=0
        )

    def _pause_of(self, experiment_id: str) -> Event | None:
        """The campaign pause that put the experiment in its current state, if one did."""
        last: Event | None = None
        for ev in self.store.events.find(experiment_id=experiment_id, limit=100_000):
            if ev.to_status is not None and ev.from_status != ev.to_status:
                last = ev
        if last is None or last.data.get("action") != "pause" or not last.data.get("campaign_id"):
            return None
        return last

    def _move(
        self, campaign_id: str, target: C, action: str, actor: str | None
    ) -> ExperimentalCampaign:
        for _ in range(50):
            campaign = self.store.campaigns.get(campaign_id)
            if not check_campaign_transition(
                campaign.status, target, entity_id=campaign_id, action=action
            ):
                return campaign
            moved = self._try_move(campaign, target, action, actor, None)
            if moved is not None:
                return moved
        raise ConcurrentUpdate(
            f"Campaign {campaign_id} kept changing; try again", campaign_id=campaign_id
        )

    def _try_move(
        self,
        campaign: ExperimentalCampaign,
        target: C,
        action: str,
        actor: str | None,
        counts: dict[str, int] | None,
    ) -> ExperimentalCampaign | None:
        now = self.clock()
        changes: dict[str, Any] = {"status": target}
        if target in (C.COMPLETED, C.CANCELLED):
            changes["ended_at"] = now
        elif campaign.ended_at is not None:
            changes["ended_at"] = None  # reopened
        data: dict[str, Any] = {"action": action}
        if counts is not None:
            data["counts"] = counts
        event = Event(
            campaign_id=campaign.campaign_id,
            type=EventType.CAMPAIGN_STATUS_CHANGED,
            actor=actor,
            from_status=campaign.status.value,
            to_status=target.value,
            at=now,
            data=data,
        )
        return self.store.campaigns.update(campaign.campaign_id, campaign.version, changes, [event])

    def _move_experiment(
        self, experiment_id: str, target: S, action: str, campaign_id: str, actor: str | None
    ) -> None:
        def decide(current: Experiment) -> Decision:
            try:
                if not check_transition(current.status, target, entity_id=experiment_id):
                    return None
            except IllegalTransition:
                return None  # finished meanwhile: a campaign action never fails on it
            now = self.clock()
            changes: dict[str, Any] = {"status": target}
            if target in TERMINAL:
                changes["ended_at"] = now
                changes["lease_expires_at"] = None
            if target is S.IN_PROGRESS and current.started_at is None:
                changes["started_at"] = now
            event = Event(
                experiment_id=experiment_id,
                campaign_id=current.campaign_id,
                type=EventType.STATUS_CHANGED,
                actor=actor,
                from_status=current.status.value,
                to_status=target.value,
                at=now,
                data={"action": action, "campaign_id": campaign_id},
            )
            return changes, [event]

        change_experiment(self.store, experiment_id, decide)
