"""Read, decide, write only if nobody wrote in between: the loop every experiment change uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labledger.core.models import Event, Experiment
from labledger.core.store import Store
from labledger.errors import ConcurrentUpdate

__all__ = ["MAX_ATTEMPTS", "Decision", "change_experiment"]

#: how often a conditional write is retried against fresh data before giving up
MAX_ATTEMPTS = 50

#: what a decision function returns: the changes and events to write, or None for "nothing to do"
Decision = tuple[dict[str, Any], list[Event]] | None


def change_experiment(
    store: Store,
    experiment_id: str,
    decide: Callable[[Experiment], Decision],
    *,
    include_deleted: bool = False,
) -> tuple[Experiment, bool]:
    """Apply ``decide(current)`` as a conditional update; retry on a lost race.

    Returns the experiment as stored afterwards and whether anything was written.
    """
    for _ in range(MAX_ATTEMPTS):
        current = store.experiments.get(experiment_id, include_deleted=include_deleted)
        decided = decide(current)
        if decided is None:
            return current, False
        changes, events = decided
        updated = store.experiments.update(experiment_id, current.version, changes, events)
        if updated is not None:
            return updated, True
    raise ConcurrentUpdate(
        f"Experiment {experiment_id} kept changing under {MAX_ATTEMPTS} attempts; try again",
        experiment_id=experiment_id,
    )
