"""Experiment programs of ours that run MADSci workflows (imported by the tests and by
``labledger worker lab_apps:Measure``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from labledger.client.application import ExperimentApplication


def three_steps(node: str, sample: str = "B2", seconds: float = 0.5) -> dict[str, Any]:
    """A workflow of three steps on one instrument, each producing a JSON data point."""
    return {
        "name": f"measure-{sample}",
        "steps": [
            {"name": "prep", "node": node, "action": "sleep", "args": {"seconds": seconds}},
            {"name": "read", "node": node, "action": "measure", "args": {"sample": sample}},
            {"name": "reread", "node": node, "action": "measure", "args": {"sample": sample + "x"}},
        ],
    }


class Measure(ExperimentApplication):
    """Measure one sample with a workflow; the absorbance is the experiment's result."""

    experiment_design = {"experiment_name": "measure"}

    def run_experiment(self, **parameters: Any) -> Mapping[str, Any] | None:
        # a worker process gets its own instrument (LAB_NODE): two workflows sharing one stall
        node = str(parameters.get("node") or os.environ.get("LAB_NODE", "sim1"))
        sample = str(parameters.get("sample", "B2"))
        run = self.run_workflow(three_steps(node, sample))
        readings = [v for v in run.values() if isinstance(v, dict) and "absorbance" in v]
        return {
            "workflow_id": run.workflow_id,
            "workflow_status": run.status,
            "absorbance": readings[0]["absorbance"] if readings else None,
        }
