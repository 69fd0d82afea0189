"""The seam for ``labledger push``: each run as the server will receive it, with its blobs.

A run maps onto the server's models field by field: its experiment becomes a
:class:`~labledger.core.models.Experiment` (id, design, parameters, status, timestamps) carrying
everything the recorder adds under ``metadata["recorder"]``, its events become
:class:`~labledger.core.models.Event` entries of the event log, and its files are the blobs named
by digest. The record is read without pydantic; here, at the edge to the server, it is checked
by the server's own models. Pushing is idempotent because ids and digests are stable: the server
can skip what it has.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from labledger.core.lifecycle import TERMINAL, ExperimentStatus
from labledger.core.models import Event, Experiment
from labledger.errors import IntegrityError
from labledger.runner.record import RunRecord
from labledger.runner.workspace import Workspace

__all__ = ["PushItem", "events_for_push", "experiment_for_push", "push_items"]


@dataclass(frozen=True)
class PushItem:
    """One run ready to send: the experiment, its events and where each of its blobs is."""

    record: RunRecord
    experiment: Experiment
    events: list[Event]
    blobs: dict[str, Path]


def experiment_for_push(record: RunRecord) -> Experiment:
    """The run's experiment with the recorder's fields under ``metadata["recorder"]``."""
    data = record.to_dict()
    experiment = data.pop("experiment")
    for local in ("events", "recorder_pid", "experiment_dir"):
        data.pop(local)
    experiment["metadata"] = {**experiment["metadata"], "recorder": data}
    try:
        return Experiment.model_validate(experiment)
    except ValidationError as exc:
        raise _unfit(record, exc) from None


def events_for_push(record: RunRecord) -> list[Event]:
    """The run's events as the server's event log holds them."""
    try:
        return [Event.model_validate(event) for event in record.to_dict()["events"]]
    except ValidationError as exc:
        raise _unfit(record, exc) from None


def _unfit(record: RunRecord, exc: ValidationError) -> IntegrityError:
    err = exc.errors()[0]
    where = ".".join(str(part) for part in err["loc"]) or "(record)"
    return IntegrityError(
        f"Run {record.number} ({record.run_id}) cannot be pushed: its record's field '{where}' "
        f"does not fit the server's model ({err['msg']}); the record may be damaged: see "
        f"`labledger show {record.number} --json`",
        field=where,
    )


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
            events=events_for_push(record),
            blobs={d: ws.store.path_of(d) for d in digests},
        )
