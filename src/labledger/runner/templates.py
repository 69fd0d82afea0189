"""The commented runner script templates `labledger init` writes where none exist."""

from __future__ import annotations

__all__ = ["SCRIPTS"]

_HEADER = """#!/usr/bin/env bash
# labledger {phase} phase ({required}).
# Runs from the experiment folder. Every variable of run.toml is an environment variable under
# its own name, plus LABLEDGER_RUN_ID, LABLEDGER_EXPERIMENT_DIR and LABLEDGER_OUTPUTS_DIR.
# Output goes to the terminal and to this phase's log; a non-zero exit fails the run.
set -euo pipefail
"""

SCRIPTS: dict[str, str] = {
    "pre-run": _HEADER.format(phase="pre-run", required="optional")
    + "\n# Set things up before the run, e.g. download data or build the code.\n"
    + 'echo "pre-run: nothing to prepare"\n',
    "run": _HEADER.format(phase="run", required="required")
    + '\n# The experiment itself, e.g.: python train.py --lr "$lr"\n'
    + 'echo "run: replace this line with your experiment (run $LABLEDGER_RUN_ID)"\n',
    "post-run": _HEADER.format(phase="post-run", required="optional")
    + "\n# Analyse the results, e.g. make plots or compute metrics.\n"
    + 'echo "post-run: nothing to analyse"\n',
    "fetch": _HEADER.format(phase="fetch", required="required")
    + "\n# Copy every output and log to keep into $LABLEDGER_OUTPUTS_DIR (outputs/). It runs even\n"
    + "# when an earlier phase failed, so it must cope with missing files.\n"
    + 'mkdir -p "$LABLEDGER_OUTPUTS_DIR"\n'
    + '# cp -r results/. "$LABLEDGER_OUTPUTS_DIR"/ 2>/dev/null || true\n',
}
