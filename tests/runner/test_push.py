"""The push seam: finished runs with their experiment, events and blob paths."""

from __future__ import annotations

from pathlib import Path

from labledger.archive.store import hash_file
from labledger.core.lifecycle import ExperimentStatus
from labledger.core.models import experiment_to_wire
from labledger.runner.push import push_items
from labledger.runner.session import execute_run, new_run
from labledger.runner.workspace import Workspace
from runner.recorder_support import make_experiment


def test_push_items_yield_finished_runs_with_every_blob_and_a_wire_ready_experiment(
    tmp_path: Path,
) -> None:
    root = make_experiment(tmp_path / "exp", run='mkdir -p results; echo "$lr" > results/lr.txt\n')
    ws = Workspace(root)
    done = new_run(ws, hypothesis="h1", variables={"lr": 0.1})
    done = execute_run(ws, lambda _c: None)
    new_run(ws, hypothesis="still planned")

    items = list(push_items(ws))
    assert [i.record.run_id for i in items] == [done.run_id]
    item = items[0]
    assert item.experiment.experiment_id == done.run_id
    assert item.experiment.status is ExperimentStatus.COMPLETED
    recorder = item.experiment.metadata["recorder"]
    assert recorder["hypothesis"] == "h1"
    assert [p["phase"] for p in recorder["phases"]] == ["pre-run", "run", "post-run", "fetch"]
    wire = experiment_to_wire(item.experiment)
    assert wire["_id"] == done.run_id and wire["parameters"] == {"lr": 0.1}
    assert [e.to_status for e in item.events if e.to_status] == [
        "planned",
        "in_progress",
        "completed",
    ]
    assert set(item.blobs) == done.digests()
    for digest, path in item.blobs.items():
        assert hash_file(path)[0] == digest
