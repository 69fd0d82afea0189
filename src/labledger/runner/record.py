"""The run record: one JSON file per run, the source of truth the query index is built from.

A run is an :class:`~labledger.core.models.Experiment` (design, parameters, status, timestamps)
plus what the recorder adds: the hypothesis and observations, the runners and how each phase
went, the code version, the environment and the manifest of every stored file. Pushing a run
to a server maps ``RunRecord.experiment`` and ``RunRecord.events`` directly.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from labledger.archive.manifest import FileEntry
from labledger.core.ids import utcnow
from labledger.core.lifecycle import ExperimentStatus, check_transition
from labledger.core.models import Event, EventType, Experiment
from labledger.errors import IntegrityError
from labledger.runner.files import write_json_atomic

__all__ = [
    "RECORD_FORMAT",
    "CodeVersion",
    "EnvironmentInfo",
    "PhaseResult",
    "PhaseStatus",
    "RunRecord",
    "read_record",
    "write_json_atomic",
]

#: version of the record file format
RECORD_FORMAT = 1

PhaseStatus = Literal["pending", "running", "ok", "failed", "skipped", "cancelled", "interrupted"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class PhaseResult(_Model):
    """How one phase went: its script, exit code, timings and the digest of its log."""

    phase: str
    script: str
    status: PhaseStatus = "pending"
    exit_code: int | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float | None = None
    log_digest: str | None = None
    note: str | None = None


class MetricSummary(_Model):
    """A metric series of a run: its points, range of steps, last, lowest and highest value."""

    count: int
    first_step: int
    last_step: int
    last: float
    min: float
    max: float


class CodeVersion(_Model):
    """The code the run used: git commit and branch, and a patch of uncommitted changes."""

    vcs: Literal["git", "none"] = "none"
    repo_root: str | None = None
    commit: str | None = None
    branch: str | None = None
    dirty: bool = False
    patch_digest: str | None = None
    patch_size: int = 0
    changed_files: list[str] = Field(default_factory=list)
    skipped_untracked: list[str] = Field(
        default_factory=list, description="Untracked files left out of the patch (too large)."
    )
    error: str | None = None


class EnvironmentInfo(_Model):
    """Where the run ran: Python and its packages, OS, host, CPU/GPU and chosen env vars."""

    python_version: str = ""
    python_executable: str = ""
    packages: dict[str, str] = Field(default_factory=dict)
    os: str = ""
    host: str = ""
    user: str = ""
    cpu: str = ""
    cpu_count: int | None = None
    gpus: list[str] = Field(default_factory=list)
    env_vars: dict[str, str] = Field(default_factory=dict)


class RunRecord(_Model):
    """Everything recorded about one run. ``files`` maps a section to its manifest entries.

    Sections: ``config`` (run.toml and labledger.toml as used), ``scripts`` (runner scripts),
    ``outputs`` (what fetch put in outputs/), ``logs`` (one log per phase), ``code`` (the patch).
    """

    format: int = RECORD_FORMAT
    experiment: Experiment
    number: int
    experiment_dir: str
    hypothesis: str = ""
    observations: str = ""
    runners: dict[str, str] = Field(default_factory=dict)
    phases: list[PhaseResult] = Field(default_factory=list)
    code: CodeVersion | None = None
    environment: EnvironmentInfo | None = None
    files: dict[str, list[FileEntry]] = Field(default_factory=dict)
    skipped_files: list[str] = Field(default_factory=list)
    #: what archiving outputs/ noticed: links out of the folder followed, links not kept
    archive_notes: list[str] = Field(default_factory=list)
    #: the status a run ends with once its outputs can be archived (the disk was full)
    pending_status: ExperimentStatus | None = None
    pending_note: str | None = None
    events: list[Event] = Field(default_factory=list)
    sealed_at: datetime | None = None
    rerun_of: str | None = None
    rerun_outputs_match: bool | None = None
    recorder_pid: int | None = None
    #: values from the result files run.toml names (dotted names for nested objects)
    results: dict[str, Any] = Field(default_factory=dict)
    #: the series written to $LABLEDGER_METRICS (their points are the ``metrics`` file)
    metrics: dict[str, MetricSummary] = Field(default_factory=dict)

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
            Event(experiment_id=self.run_id, type=type_, actor="labledger-recorder", **fields)
        )

    def digests(self) -> set[str]:
        """Every blob digest the record refers to."""
        found = {e.digest for entries in self.files.values() for e in entries if e.digest}
        found.update(p.log_digest for p in self.phases if p.log_digest)
        if self.code and self.code.patch_digest:
            found.add(self.code.patch_digest)
        return found

    def to_json(self) -> str:
        """The record as the JSON text of its file."""
        data = self.model_dump(mode="json", by_alias=False)
        return json.dumps(data, indent=1, ensure_ascii=False, sort_keys=False) + "\n"


def read_record(path: Path) -> RunRecord:
    """Read a record file; raise IntegrityError naming the file if it is unreadable."""
    try:
        return RunRecord.model_validate_json(path.read_bytes())
    except (OSError, ValidationError, ValueError) as exc:
        raise IntegrityError(f"Run record {path} is unreadable: {exc}", path=str(path)) from None
