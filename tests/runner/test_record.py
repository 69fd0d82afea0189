"""The run record file: its format stays readable both ways, and damage is named precisely.

``data/record_format1.json`` was written by the recorder when its record was a set of pydantic
models (format 1; only its list of installed packages and its host, user and interpreter were
shortened by hand, with the same JSON layout). The record is now read without pydantic; the
text it writes must not change.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from pydantic import BaseModel

from labledger.archive.manifest import FileEntry
from labledger.core.lifecycle import ExperimentStatus
from labledger.core.models import (
    Event,
    Experiment,
    ExperimentDesign,
    OwnershipInfo,
    experiment_to_wire,
)
from labledger.core.vocabulary import EventType
from labledger.errors import IntegrityError
from labledger.runner.push import events_for_push, experiment_for_push
from labledger.runner.record import (
    RECORD_FORMAT,
    Ownership,
    RunDesign,
    RunEvent,
    RunExperiment,
    RunRecord,
    read_record,
)
from labledger.runner.session import new_run
from labledger.runner.workspace import Workspace
from runner.recorder_support import make_experiment

SAMPLE = Path(__file__).parent / "data" / "record_format1.json"


def test_a_record_written_by_the_pydantic_models_reads_with_every_field() -> None:
    record = read_record(SAMPLE)
    assert record.format == RECORD_FORMAT == 1
    assert record.run_id == "01M8Q3J8NF4075B1JGQZXJDVZK"
    assert record.status is ExperimentStatus.COMPLETED
    assert record.name == "sample — ünïcode"
    assert record.variables == {"lr": 0.1, "epochs": 3, "fast": True, "opt": "adam"}
    assert record.experiment.experiment_design is not None
    assert record.experiment.experiment_design.experiment_name == "format-1 sample"
    assert record.experiment.created_at == datetime(2026, 11, 30, 20, 50, 26, 95102, tzinfo=UTC)
    assert record.sealed_at is not None and record.sealed_at.tzinfo is not None
    assert [p.status for p in record.phases] == ["ok"] * 4
    assert record.code is not None and record.code.dirty and record.code.changed_files == ["run.sh"]
    assert record.environment is not None and record.environment.cpu_count == 2
    link = record.files["outputs"][1]
    assert link == FileEntry(
        path="outputs/results/latest.json", kind="symlink", target="final.json"
    )
    assert record.results == {"val.acc": 0.75, "note": "ok"}
    assert record.metrics["loss"].last == 0.5 and record.metrics["loss"].count == 2
    assert [e.type for e in record.events] == [
        EventType.CREATED,
        EventType.STATUS_CHANGED,
        EventType.UPDATED,
        EventType.STATUS_CHANGED,
        EventType.UPDATED,
    ]
    assert len(record.digests()) == 13


def test_a_record_written_by_the_pydantic_models_is_written_back_to_the_same_text() -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    assert read_record(SAMPLE).to_json() == text


def _shape(value: Any) -> Any:
    """The keys of every object in ``value`` (lists by their first item), not the values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items() if k not in ("parameters", "data")}
    if isinstance(value, list) and value:
        return [_shape(value[0])]
    return None


def test_a_new_record_has_the_fields_of_the_pydantic_models_in_their_order(tmp_path: Path) -> None:
    ws = Workspace(make_experiment(tmp_path / "exp", run="true\n"))
    record = new_run(ws, name="n", hypothesis="h", variables={"lr": 0.1})
    written = json.loads(ws.record_path(record.run_id).read_text(encoding="utf-8"))
    sample = json.loads(SAMPLE.read_text(encoding="utf-8"))
    assert list(written) == list(sample)
    assert list(written["experiment"]) == list(sample["experiment"])
    assert _shape(written["experiment"]) == _shape(sample["experiment"])
    assert _shape(written["events"]) == _shape(sample["events"])
    # timestamps as the pydantic models wrote them: UTC, with microseconds and a Z
    assert written["experiment"]["created_at"].endswith("Z")
    assert datetime.fromisoformat(written["experiment"]["created_at"]).tzinfo is not None


@pytest.mark.parametrize(
    ("struct", "model"),
    [
        (RunExperiment, Experiment),
        (RunEvent, Event),
        (RunDesign, ExperimentDesign),
        (Ownership, OwnershipInfo),
    ],
    ids=["experiment", "event", "design", "ownership"],
)
def test_the_records_parts_have_the_fields_of_the_servers_models(
    struct: type[msgspec.Struct], model: type[BaseModel]
) -> None:
    assert [f.name for f in msgspec.structs.fields(struct)] == list(model.model_fields)


def test_a_record_converts_to_the_servers_models_at_the_push(tmp_path: Path) -> None:
    record = read_record(SAMPLE)
    experiment = experiment_for_push(record)
    assert isinstance(experiment, Experiment)
    assert experiment.experiment_id == record.run_id
    assert experiment.status is ExperimentStatus.COMPLETED
    assert experiment.created_at == record.experiment.created_at
    recorder = experiment.metadata["recorder"]
    assert recorder["observations"] == "it went down"
    assert "experiment" not in recorder and "experiment_dir" not in recorder
    assert experiment_to_wire(experiment)["parameters"] == record.variables
    events = events_for_push(record)
    assert all(isinstance(e, Event) for e in events)
    assert [e.to_status for e in events if e.to_status] == ["planned", "in_progress", "completed"]
    assert [e.at for e in events] == [e.at for e in record.events]


def test_a_record_the_servers_model_refuses_is_named_at_the_push(tmp_path: Path) -> None:
    data = json.loads(SAMPLE.read_text(encoding="utf-8"))
    data["experiment"]["ownership_info"]["user_id"] = "not-a-ulid"
    path = tmp_path / "record.json"
    path.write_text(json.dumps(data))
    with pytest.raises(IntegrityError, match=r"Run 1 .* field 'ownership_info.user_id'"):
        experiment_for_push(read_record(path))


def test_keys_a_record_does_not_know_are_ignored(tmp_path: Path) -> None:
    data = json.loads(SAMPLE.read_text(encoding="utf-8"))
    data["written_by_a_later_version"] = {"x": 1}
    data["experiment"]["something_new"] = 2
    del data["metrics"], data["results"], data["archive_notes"]  # older files lack these
    path = tmp_path / "record.json"
    path.write_text(json.dumps(data))
    record = read_record(path)
    assert record.metrics == {} and record.results == {} and record.archive_notes == []
    assert record.run_id == "01M8Q3J8NF4075B1JGQZXJDVZK"


def _damaged(data: dict[str, Any], where: str, value: Any) -> dict[str, Any]:
    *parents, last = where.split(".")
    target: Any = data
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is _MISSING:
        del target[last]
    else:
        target[last] = value
    return data


_MISSING = object()


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        ("number", "one", "Expected `int`, got `str` - at `$.number`"),
        ("number", _MISSING, "Object missing required field `number`"),
        (
            "experiment.experiment_id",
            _MISSING,
            "Object missing required field `experiment_id` - at `$.experiment`",
        ),
        ("experiment.status", "done", "Invalid enum value 'done' - at `$.experiment.status`"),
        (
            "experiment.created_at",
            "2026-01-01T00:00:00",
            "with a timezone component - at `$.experiment.created_at`",
        ),
        ("experiment.run_name", "x" * 1001, "length <= 1000 - at `$.experiment.run_name`"),
        ("experiment.priority", 10**7, "<= 1000000 - at `$.experiment.priority`"),
        ("events.0.type", "exploded", "Invalid enum value 'exploded' - at `$.events[0].type`"),
        ("phases.1.status", "great", "at `$.phases[1].status`"),
        ("files.outputs.0.kind", "pipe", "at `$.files[...][0].kind`"),
        ("experiment.parameters", [1], "Expected `object`, got `array`"),
    ],
    ids=[
        "wrong-type",
        "field-missing",
        "id-missing",
        "unknown-status",
        "naive-time",
        "long-name",
        "out-of-range",
        "unknown-event",
        "unknown-phase-status",
        "unknown-entry-kind",
        "parameters-not-an-object",
    ],
)
def test_a_damaged_record_names_the_file_the_field_and_what_was_expected(
    tmp_path: Path, where: str, value: Any, expected: str
) -> None:
    data = _damaged(json.loads(SAMPLE.read_text(encoding="utf-8")), where, value)
    path = tmp_path / "record.json"
    path.write_text(json.dumps(data))
    with pytest.raises(IntegrityError) as info:
        read_record(path)
    assert info.value.message.startswith(f"Run record {path} is unreadable: ")
    assert expected in info.value.message
    assert info.value.details["path"] == str(path)


@pytest.mark.parametrize("text", ["", "{", "[]", "null", '{"format": 1}', "\x00"], ids=repr)
def test_a_record_that_is_not_a_record_is_unreadable_not_a_crash(tmp_path: Path, text: str) -> None:
    path = tmp_path / "record.json"
    path.write_text(text)
    with pytest.raises(IntegrityError, match="is unreadable"):
        read_record(path)


def test_a_record_made_in_code_round_trips_through_its_file(tmp_path: Path) -> None:
    record = read_record(SAMPLE)
    record.set_status(ExperimentStatus.COMPLETED)  # already there: no change, no event
    assert len(record.events) == 5
    record.add_event(EventType.UPDATED, data={"note": "noted"})
    path = tmp_path / "record.json"
    path.write_text(record.to_json(), encoding="utf-8")
    again = read_record(path)
    assert again == record
    assert isinstance(again, RunRecord)
