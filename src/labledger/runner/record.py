"""The run record: one JSON file per run, the source of truth the query index is built from.

A run is an experiment (design, parameters, status, timestamps: the fields and checks of the
server's :class:`~labledger.core.models.Experiment`) plus what the recorder adds: the hypothesis
and observations, the runners and how each phase went, the code version, the environment and
the manifest of every stored file. Pushing a run to a server turns ``RunRecord.experiment`` and
``RunRecord.events`` into the server's models (:mod:`labledger.runner.push`).

The record's types are msgspec structs, not pydantic models: every recorder command reads or
writes a record, and building pydantic's models would cost them more than all their own work.
The JSON written is the same as the server's models would write (field names, timestamps in
UTC with ``Z``), and unknown keys are ignored, so records of other versions still read.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, field

from labledger.archive.manifest import FileEntry
from labledger.core.ids import utcnow
from labledger.core.lifecycle import ExperimentStatus, check_transition
from labledger.core.vocabulary import MAX_NAME, MAX_TEXT, EventType
from labledger.errors import IntegrityError
from labledger.runner.files import write_json_atomic

__all__ = [
    "RECORD_FORMAT",
    "CodeVersion",
    "EnvironmentInfo",
    "MetricSummary",
    "Ownership",
    "PhaseResult",
    "PhaseStatus",
    "RunDesign",
    "RunEvent",
    "RunExperiment",
    "RunRecord",
    "read_record",
    "write_json_atomic",
]

#: version of the record file format
RECORD_FORMAT = 1

PhaseStatus = Literal["pending", "running", "ok", "failed", "skipped", "cancelled", "interrupted"]

# the bounds of the server's models (and of its database columns)
Name = Annotated[str, Meta(max_length=MAX_NAME)]
Text = Annotated[str, Meta(max_length=MAX_TEXT)]
#: a timestamp: always with its time zone (the recorder writes UTC)
Time = Annotated[datetime, Meta(tz=True)]
Id = Annotated[str, Meta(max_length=26)]
JsonObject = dict[str, Any]


class _Struct(msgspec.Struct, kw_only=True):
    """Base of the record's parts: unknown keys are ignored when read.

    Every part is built by keyword (``kw_only``, repeated on each class for type checkers).
    """


class Ownership(_Struct, kw_only=True):
    """Who and what owns the run (the server's ``OwnershipInfo``; the recorder sets none)."""

    user_id: str | None = None
    experiment_id: str | None = None
    campaign_id: str | None = None
    project_id: str | None = None
    node_id: str | None = None
    workcell_id: str | None = None
    lab_id: str | None = None
    step_id: str | None = None
    workflow_id: str | None = None
    manager_id: str | None = None


class RunDesign(_Struct, kw_only=True):
    """The experiment the run belongs to (the server's ``ExperimentDesign``)."""

    experiment_name: Annotated[str, Meta(min_length=1, max_length=MAX_NAME)]
    experiment_description: Text | None = None
    #: kept as found; checked by the server's models when the run is pushed
    resource_conditions: list[JsonObject] = field(default_factory=list)
    ownership_info: Ownership = field(default_factory=Ownership)
    parameters: JsonObject = field(default_factory=dict)


class RunExperiment(_Struct, kw_only=True):
    """The run as an experiment: the fields of the server's ``Experiment``, with its bounds."""

    #: required when read: a record without its id must not be given a new one
    experiment_id: Annotated[str, Meta(min_length=1)]
    status: ExperimentStatus = ExperimentStatus.IN_PROGRESS
    experiment_design: RunDesign | None = None
    ownership_info: Ownership = field(default_factory=Ownership)
    run_name: Name | None = None
    run_description: Text | None = None
    started_at: Time | None = None
    ended_at: Time | None = None
    created_at: Time = field(default_factory=utcnow)
    updated_at: Time = field(default_factory=utcnow)
    campaign_id: Id | None = None
    parameters: JsonObject = field(default_factory=dict)
    metadata: JsonObject = field(default_factory=dict)
    priority: Annotated[int, Meta(ge=-1_000_000, le=1_000_000)] = 0
    not_before: Time | None = None
    progress: float | None = None
    attempts: Annotated[int, Meta(ge=0, le=1_000_000)] = 0
    version: Annotated[int, Meta(ge=1, le=2**31 - 1)] = 1
    deleted_at: Time | None = None
    worker_id: Annotated[str, Meta(max_length=200)] | None = None
    claimed_at: Time | None = None
    lease_expires_at: Time | None = None


class RunEvent(_Struct, kw_only=True):
    """One entry of the run's event log (the server's ``Event``)."""

    event_id: int | None = None
    experiment_id: Id | None = None
    campaign_id: Id | None = None
    type: EventType
    actor: Annotated[str, Meta(max_length=200)] | None = None
    from_status: Annotated[str, Meta(max_length=16)] | None = None
    to_status: Annotated[str, Meta(max_length=16)] | None = None
    at: Time = field(default_factory=utcnow)
    data: JsonObject = field(default_factory=dict)


class PhaseResult(_Struct, kw_only=True):
    """How one phase went: its script, exit code, timings and the digest of its log."""

    phase: str
    script: str
    status: PhaseStatus = "pending"
    exit_code: int | None = None
    started_at: Time | None = None
    ended_at: Time | None = None
    duration_s: float | None = None
    log_digest: str | None = None
    note: str | None = None


class MetricSummary(_Struct, kw_only=True):
    """A metric series of a run: its points, range of steps, last, lowest and highest value."""

    count: int
    first_step: int
    last_step: int
    last: float
    min: float
    max: float


class CodeVersion(_Struct, kw_only=True):
    """The code the run used: git commit and branch, and a patch of uncommitted changes."""

    vcs: Literal["git", "none"] = "none"
    repo_root: str | None = None
    commit: str | None = None
    branch: str | None = None
    dirty: bool = False
    patch_digest: str | None = None
    patch_size: int = 0
    changed_files: list[str] = field(default_factory=list)
    #: untracked files left out of the patch (too large)
    skipped_untracked: list[str] = field(default_factory=list)
    error: str | None = None


class EnvironmentInfo(_Struct, kw_only=True):
    """Where the run ran: Python and its packages, OS, host, CPU/GPU and chosen env vars."""

    python_version: str = ""
    python_executable: str = ""
    packages: dict[str, str] = field(default_factory=dict)
    os: str = ""
    host: str = ""
    user: str = ""
    cpu: str = ""
    cpu_count: int | None = None
    gpus: list[str] = field(default_factory=list)
    env_vars: dict[str, str] = field(default_factory=dict)


class RunRecord(_Struct, kw_only=True):
    """Everything recorded about one run. ``files`` maps a section to its manifest entries.

    Sections: ``config`` (run.toml and labledger.toml as used), ``scripts`` (runner scripts),
    ``outputs`` (what fetch put in outputs/), ``logs`` (one log per phase), ``code`` (the patch).
    """

    format: int = RECORD_FORMAT
    experiment: RunExperiment
    number: int
    experiment_dir: str
    hypothesis: str = ""
    observations: str = ""
    runners: dict[str, str] = field(default_factory=dict)
    phases: list[PhaseResult] = field(default_factory=list)
    code: CodeVersion | None = None
    environment: EnvironmentInfo | None = None
    files: dict[str, list[FileEntry]] = field(default_factory=dict)
    skipped_files: list[str] = field(default_factory=list)
    #: what archiving outputs/ noticed: links out of the folder followed, links not kept
    archive_notes: list[str] = field(default_factory=list)
    #: the status a run ends with once its outputs can be archived (the disk was full)
    pending_status: ExperimentStatus | None = None
    pending_note: str | None = None
    events: list[RunEvent] = field(default_factory=list)
    sealed_at: Time | None = None
    rerun_of: str | None = None
    rerun_outputs_match: bool | None = None
    recorder_pid: int | None = None
    #: values from the result files run.toml names (dotted names for nested objects)
    results: dict[str, Any] = field(default_factory=dict)
    #: the series written to $LABLEDGER_METRICS (their points are the ``metrics`` file)
    metrics: dict[str, MetricSummary] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        """The run's ULID (the experiment id)."""
        return self.experiment.experiment_id

    @property
    def status(self) -> ExperimentStatus:
        """The run's lifecycle state."""
        return self.experiment.status

    @property
    def variables(self) -> dict[str, Any]:
        """The run's variables (the experiment's parameters)."""
        return self.experiment.parameters

    @property
    def name(self) -> str:
        """The run name, or ``run N`` when none was given."""
        return self.experiment.run_name or f"run {self.number}"

    def set_status(self, status: ExperimentStatus, *, note: str | None = None) -> None:
        """Move to ``status`` through the lifecycle table and log the change as an event."""
        status = ExperimentStatus(status)
        current = self.experiment.status
        if not check_transition(current, status, entity_id=self.run_id):
            return
        now = utcnow()
        self.experiment.status = status
        self.experiment.updated_at = now
        if status is ExperimentStatus.IN_PROGRESS and self.experiment.started_at is None:
            self.experiment.started_at = now
        if status in (
            ExperimentStatus.COMPLETED,
            ExperimentStatus.FAILED,
            ExperimentStatus.CANCELLED,
            ExperimentStatus.UNKNOWN,
        ):
            self.experiment.ended_at = now
        self.add_event(
            EventType.STATUS_CHANGED,
            from_status=current.value,
            to_status=status.value,
            data={"note": note} if note else {},
        )

    def add_event(self, type_: EventType, **fields: Any) -> None:
        """Append an event about this run."""
        self.events.append(
            RunEvent(experiment_id=self.run_id, type=type_, actor="labledger-recorder", **fields)
        )

    def digests(self) -> set[str]:
        """Every blob digest the record refers to."""
        found = {e.digest for entries in self.files.values() for e in entries if e.digest}
        found.update(p.log_digest for p in self.phases if p.log_digest)
        if self.code and self.code.patch_digest:
            found.add(self.code.patch_digest)
        return found

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data: exactly what its file holds."""
        data: dict[str, Any] = msgspec.json.decode(_encoder.encode(self))
        return data

    def to_json(self) -> str:
        """The record as the JSON text of its file.

        Laid out as the pydantic models wrote it (``json.dumps`` with ``indent=1``, UTF-8
        unescaped), in a fraction of the time; a value that is not a finite number is written as
        ``null``, as they did for variables and results.
        """
        return msgspec.json.format(_encoder.encode(self), indent=1).decode() + "\n"


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(RunRecord)


def read_record(path: Path) -> RunRecord:
    """Read a record file; raise IntegrityError naming the file if it is unreadable.

    The message names the field and what was expected, e.g. ``Expected `int`, got `str` -
    at `$.number```.
    """
    try:
        return _decoder.decode(path.read_bytes())
    except (OSError, msgspec.DecodeError) as exc:
        raise IntegrityError(f"Run record {path} is unreadable: {exc}", path=str(path)) from None
