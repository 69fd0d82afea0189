"""Workflow definitions given to ExperimentApplication.run_workflow: a mapping or a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from labledger.client.workflows import WorkflowRun, load_definition
from labledger.errors import InvalidInput

DEFINITION = """\
name: measure
steps:
  - name: read
    node: sim1
    action: measure
    args: {sample: B2}
"""


def test_a_yaml_file_and_a_mapping_load_alike(tmp_path: Path) -> None:
    path = tmp_path / "measure.workflow.yaml"
    path.write_text(DEFINITION)
    loaded = load_definition(path)
    assert loaded == load_definition(str(path))
    assert loaded["steps"][0]["args"] == {"sample": "B2"}
    assert load_definition({"steps": []}) == {"steps": [], "name": "workflow"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name: x\n", "expected a mapping with name and a list of steps"),
        ("- a\n- b\n", "expected a mapping with name and a list of steps"),
        ("steps: [\n", "not valid YAML"),
    ],
)
def test_a_bad_definition_names_what_was_expected(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(InvalidInput, match=message) as raised:
        load_definition(path)
    assert raised.value.details["field"] == "definition"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        load_definition(tmp_path / "nope.yaml")


def test_a_runs_status_word_and_values() -> None:
    run = WorkflowRun(
        {"workflow_id": "W", "status": {"completed": True, "ok": True}},
        [
            {"data_type": "json", "value": {"absorbance": 0.4}},
            {"data_type": "file", "path": "/x.csv"},
        ],
    )
    assert (run.workflow_id, run.status, run.values()) == ("W", "completed", [{"absorbance": 0.4}])
    assert WorkflowRun({"workflow_id": "W", "status": {"paused": True}}).status == "paused"
