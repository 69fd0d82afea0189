"""Experiment and campaign lifecycles as data: the states, one transition table, one check.

An experiment moves through these states::

    planned ──► queued ──► in_progress ◄──► paused
       │          │  ▲          │              │
       │          │  └──(lease expired)        │
       ▼          ▼             ▼              ▼
    cancelled  cancelled   completed | failed | cancelled | unknown

``completed``, ``failed`` and ``cancelled`` are terminal: nothing leaves them. ``unknown`` is
what a record says when nobody knows (a worker vanished, a recorder was killed) and can be
resolved to any other state except ``planned``. Asking for the state an experiment is already
in is allowed and changes nothing (commands are idempotent, so retries are safe).
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Final

from labledger.errors import IllegalTransition, InvalidInput

__all__ = [
    "CAMPAIGN_TRANSITIONS",
    "MADSCI_STATUSES",
    "TERMINAL",
    "TRANSITIONS",
    "Action",
    "CampaignStatus",
    "ExperimentStatus",
    "check_campaign_transition",
    "check_transition",
    "madsci_status",
    "parse_status",
    "target_of",
]


class ExperimentStatus(StrEnum):
    """Where an experiment is in its life."""

    PLANNED = "planned"  # designed and stored; nobody has asked for it to run yet
    QUEUED = "queued"  # waiting for a worker to claim it
    IN_PROGRESS = "in_progress"  # running now
    PAUSED = "paused"  # stopped on request; can continue
    COMPLETED = "completed"  # finished as intended (terminal)
    FAILED = "failed"  # finished with an error (terminal)
    CANCELLED = "cancelled"  # stopped on request for good (terminal)
    UNKNOWN = "unknown"  # the record lost track (a killed worker or recorder); can be resolved


S = ExperimentStatus

TERMINAL: Final = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})

#: state -> states it may move to. The single source of truth for every face of labledger.
TRANSITIONS: Final = MappingProxyType(
    {
        S.PLANNED: frozenset({S.QUEUED, S.IN_PROGRESS, S.CANCELLED}),
        S.QUEUED: frozenset({S.PLANNED, S.IN_PROGRESS, S.PAUSED, S.CANCELLED, S.FAILED}),
        S.IN_PROGRESS: frozenset(
            {S.PAUSED, S.COMPLETED, S.FAILED, S.CANCELLED, S.UNKNOWN, S.QUEUED}
        ),
        S.PAUSED: frozenset(
            {S.IN_PROGRESS, S.QUEUED, S.COMPLETED, S.FAILED, S.CANCELLED, S.UNKNOWN}
        ),
        S.UNKNOWN: frozenset(
            {S.IN_PROGRESS, S.PAUSED, S.QUEUED, S.COMPLETED, S.FAILED, S.CANCELLED}
        ),
        S.COMPLETED: frozenset(),
        S.FAILED: frozenset(),
        S.CANCELLED: frozenset(),
    }
)

#: the six values a MADSci 0.8.1 client can parse
MADSCI_STATUSES: Final = frozenset(
    {S.IN_PROGRESS, S.PAUSED, S.COMPLETED, S.FAILED, S.CANCELLED, S.UNKNOWN}
)


class Action(StrEnum):
    """What a caller asks an experiment to do; each resolves to a target state."""

    PLAN = "plan"
    QUEUE = "queue"
    START = "start"
    PAUSE = "pause"
    CONTINUE = "continue"
    END = "end"
    CANCEL = "cancel"
    FAIL = "fail"
    REQUEUE = "requeue"
    MARK_UNKNOWN = "mark_unknown"


_FIXED_TARGETS: Final = MappingProxyType(
    {
        Action.PLAN: S.PLANNED,
        Action.QUEUE: S.QUEUED,
        Action.START: S.IN_PROGRESS,
        Action.PAUSE: S.PAUSED,
        Action.END: S.COMPLETED,
        Action.CANCEL: S.CANCELLED,
        Action.FAIL: S.FAILED,
        Action.REQUEUE: S.QUEUED,
        Action.MARK_UNKNOWN: S.UNKNOWN,
    }
)


def target_of(action: Action, *, started: bool, end_status: S | None = None) -> S:
    """The state ``action`` asks for.

    ``continue`` resumes a started experiment (``in_progress``) and puts one that never started
    back in the queue. ``end`` completes unless ``end_status`` names another terminal state.
    """
    if action is Action.CONTINUE:
        return S.IN_PROGRESS if started else S.QUEUED
    if action is Action.END and end_status is not None:
        if end_status not in TERMINAL:
            raise InvalidInput(
                f"status: 'end' needs a terminal status (completed, failed or cancelled), "
                f"got '{end_status}'",
                field="status",
            )
        return end_status
    return _FIXED_TARGETS[action]


def check_transition(
    current: S, requested: S, *, entity_id: str | None = None, action: str | None = None
) -> bool:
    """Check ``current -> requested`` against :data:`TRANSITIONS`.

    Returns False when nothing needs to change (the experiment is already in ``requested``),
    True when the change is allowed, and raises :class:`IllegalTransition` naming both states
    otherwise.
    """
    if current == requested:
        return False
    if requested not in TRANSITIONS[current]:
        raise IllegalTransition(current, requested, entity_id=entity_id, action=action)
    return True


def madsci_status(status: S) -> S:
    """The status a MADSci 0.8.1 client can parse: not-yet-started states read as ``unknown``."""
    return status if status in MADSCI_STATUSES else S.UNKNOWN


_PREFIX = "ExperimentStatus."


def parse_status(value: str, *, field: str = "status") -> S:
    """Parse a status in both encodings MADSci sends: ``failed``, ``ExperimentStatus.FAILED``."""
    raw = value.strip()
    if raw.startswith(_PREFIX):
        raw = raw[len(_PREFIX) :]
    try:
        return S(raw.lower())
    except ValueError:
        allowed = ", ".join(s.value for s in S)
        raise InvalidInput(
            f"{field}: expected one of {allowed}, got {value!r}", field=field
        ) from None


class CampaignStatus(StrEnum):
    """Where a campaign is in its life."""

    PLANNED = "planned"  # created; none of its experiments has started
    ACTIVE = "active"  # experiments are running or queued
    PAUSED = "paused"  # on hold: its running experiments paused, its queue held
    COMPLETED = "completed"  # every experiment finished (reopens if a new one joins)
    CANCELLED = "cancelled"  # stopped for good; unfinished experiments cancelled (terminal)


C = CampaignStatus

CAMPAIGN_TRANSITIONS: Final = MappingProxyType(
    {
        C.PLANNED: frozenset({C.ACTIVE, C.PAUSED, C.COMPLETED, C.CANCELLED}),
        C.ACTIVE: frozenset({C.PAUSED, C.COMPLETED, C.CANCELLED}),
        C.PAUSED: frozenset({C.ACTIVE, C.COMPLETED, C.CANCELLED}),
        # A completed campaign reopens when a new experiment joins it (MADSci clients add
        # experiments one by one, so "all finished" can be true between two of them).
        C.COMPLETED: frozenset({C.ACTIVE}),
        C.CANCELLED: frozenset(),
    }
)


def check_campaign_transition(
    current: C, requested: C, *, entity_id: str | None = None, action: str | None = None
) -> bool:
    """Like :func:`check_transition`, for campaigns."""
    if current == requested:
        return False
    if requested not in CAMPAIGN_TRANSITIONS[current]:
        raise IllegalTransition(
            current, requested, entity="campaign", entity_id=entity_id, action=action
        )
    return True
