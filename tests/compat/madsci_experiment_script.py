"""Runs MADSci 0.8.1's own ``ExperimentScript`` against a server; run by the MADSci venv's python.

    python madsci_experiment_script.py URL --out report.json [--campaign ID] [--gate FILE]

The experiment calls ``check_experiment_status()`` between steps, as MADSci's docs ask, until it
is cancelled from outside or, with ``--gate``, until that file exists. It writes its experiment
id to ``<out>.id`` as soon as it runs, and at the end a JSON report: what ``run()`` returned or
the exception it raised, as the test's judge. Not a test module: it imports madsci, which only
that venv has.
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path
from typing import Any

from madsci.common.types.experiment_types import ExperimentDesign
from madsci.experiment_application import ExperimentScript


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--campaign")
    parser.add_argument("--gate", type=Path)
    args = parser.parse_args()
    ownership: dict[str, Any] = {"campaign_id": args.campaign} if args.campaign else {}

    class Steps(ExperimentScript):  # type: ignore[misc]  # madsci is untyped here
        experiment_design = ExperimentDesign(
            experiment_name="official script", ownership_info=ownership
        )

        def run_experiment(self) -> dict[str, Any]:
            assert self.experiment is not None
            # written aside and renamed: the test reads the id as soon as the name appears
            staged = args.out.with_suffix(".id.partial")
            staged.write_text(self.experiment.experiment_id)
            staged.replace(args.out.with_suffix(".id"))
            steps = 0
            while args.gate is None or not args.gate.exists():
                self.check_experiment_status()  # waits while paused, raises when cancelled
                steps += 1
                time.sleep(0.1)
            self.check_experiment_status()
            return {"steps": steps}

    script = Steps(experiment_server_url=args.url)
    report: dict[str, Any] = {}
    try:
        report["returned"] = script.run()
    except Exception as exc:
        report["raised"] = type(exc).__name__
        report["module"] = type(exc).__module__
        report["traceback"] = traceback.format_exc()
    report["final_status"] = script.experiment.status.value if script.experiment else None
    args.out.write_text(json.dumps(report))


if __name__ == "__main__":
    main()
