"""MADSci 0.8.1's own ``ExperimentScript`` running a 3-step workflow, against labledger as its
Experiment Manager; run by the python of the MADSci lab venv, never imported by the tests::

    python madsci_experiment_script.py --out report.json --node sim1

The managers' URLs come from the environment (``EXPERIMENT_SERVER_URL``,
``WORKCELL_SERVER_URL``, ``DATA_SERVER_URL`` ...), as in any MADSci lab. It writes a JSON report:
the experiment id and what ``run()`` returned, or the exception it raised.
"""

import argparse
import json
import traceback
from pathlib import Path
from typing import Any

from madsci.common.types.experiment_types import ExperimentDesign
from madsci.common.types.workflow_types import WorkflowDefinition
from madsci.experiment_application import ExperimentScript


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--node", default="sim1")
    args = parser.parse_args()

    definition = WorkflowDefinition.model_validate(
        {
            "name": "official-measure",
            "steps": [
                {"name": "prep", "node": args.node, "action": "sleep", "args": {"seconds": 0.5}},
                {"name": "read", "node": args.node, "action": "measure", "args": {"sample": "C3"}},
                {"name": "again", "node": args.node, "action": "measure", "args": {"sample": "C4"}},
            ],
        }
    )

    class Measure(ExperimentScript):  # type: ignore[misc]  # madsci is untyped here
        experiment_design = ExperimentDesign(experiment_name="official measure")

        def run_experiment(self) -> dict[str, Any]:
            workflow = self.workcell_client.start_workflow(
                definition, await_completion=True, prompt_on_error=False
            )
            return {"workflow_id": workflow.workflow_id, "ok": bool(workflow.status.ok)}

    script = Measure()
    report: dict[str, Any] = {}
    try:
        report["returned"] = script.run()
    except Exception as exc:
        report["raised"] = type(exc).__name__
        report["traceback"] = traceback.format_exc()
    report["experiment_id"] = script.experiment.experiment_id if script.experiment else None
    report["final_status"] = script.experiment.status.value if script.experiment else None
    args.out.write_text(json.dumps(report))


if __name__ == "__main__":
    main()
