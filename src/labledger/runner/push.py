"""The seam for ``labledger push``: each run as the server will receive it, with its blobs.

A run maps onto the server's model directly: its :class:`~labledger.core.models.Experiment`
(id, design, parameters, status, timestamps) carries everything the recorder adds under
``metadata["recorder"]``, its events go to the event log, and its files are the blobs named by
digest. Pushing is idempotent because ids and digests are stable: the server can skip what it has.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from labledger.core.lifecycle import TERMINAL, ExperimentStatus
from labledger.core.models import Event, Experiment
from labledger.runner.record import RunRecord
from labledger.runner.workspace import Workspace

__all__ = ["PushItem", "experiment_for_push", "push_items"]


@dataclass(frozen=True)
class PushItem:
    """One run ready to send: the experiment, its events and where each of its blobs is."""

    record: RunRecord
    experiment: Experiment
    events: list[Event]
    blobs: dict[str, Path]


def experiment_for_push(record: RunRecord) -> Experiment:
    """The run's experiment with the recorder's fields under ``metadata["recorder"]``."""
    recorder = record.model_dump(
        mode="json", exclude={"experiment", "events", "recorder_pid", "experiment_dir"}
    )
    metadata = {**record.experiment.metadata, "recorder": recorder}
    return record.experiment.model_copy(update={"metadata": metadata}, deep=True)


def push_items(ws: Workspace, refs: Iterable[str] | None = None) -> Iterator[PushItem]:
    """Yield the runs to push (default: every finished run), oldest first.

    Runs still ``planned`` or ``in_progress`` are left out: they are not finished records yet.
    """
    records = [ws.resolve(r) for r in refs] if refs is not None else list(ws.records())
    for record in records:
        if record.status not in TERMINAL and record.status is not ExperimentStatus.UNKNOWN:
            continue
        digests = sorted(record.digests())
        yield PushItem(
            record=record,
            experiment=experiment_for_push(record),
            events=list(record.events),
            blobs={d: ws.store.path_of(d) for d in digests},
        )
