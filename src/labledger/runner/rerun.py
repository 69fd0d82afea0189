"""Run a past run again: its archived scripts and variables, then compare the outputs.

The rest of the code is today's unless asked otherwise: :func:`code_drift` says how today's
code differs from the run's recorded commit and patch, and ``rerun(at_recorded_code=True)``
runs the phases in a copy of that recorded code, made in a temp folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from labledger.archive.manifest import restore_entries
from labledger.errors import InvalidInput
from labledger.runner.capture import capture_code
from labledger.runner.closing import OutputsDiff, compare_outputs
from labledger.runner.config import RUN_FILE
from labledger.runner.record import CodeVersion, RunRecord
from labledger.runner.recorded_code import code_difference, materialize
from labledger.runner.session import Echo, execute_run, new_run
from labledger.runner.workspace import STATE_DIR, Workspace

__all__ = ["code_drift", "rerun"]


def code_drift(ws: Workspace, ref: str) -> str | None:
    """How today's code differs from run ``ref``'s recorded commit and patch (None: the same)."""
    source = ws.resolve(ref)
    now = capture_code(ws.root, ws.store, exclude=["outputs", STATE_DIR, RUN_FILE])
    return code_difference(source.code, now)


def rerun(
    ws: Workspace, ref: str, echo: Echo, *, at_recorded_code: bool = False
) -> tuple[RunRecord, OutputsDiff]:
    """Start a new run with the scripts and variables of run ``ref``, run it, compare outputs.

    The past run's scripts are restored to a scratch folder and run from there, so the
    scripts in the experiment folder are left as they are. The rest of the code is today's,
    unless ``at_recorded_code``: then the phases run in a copy of the run's recorded commit
    and patch, made in a temp folder (the repository is not touched), and the new run records
    that code version.
    """
    source = ws.resolve(ref)
    if not source.files.get("scripts"):
        raise InvalidInput(f"Run {source.number} never ran: it has no scripts to run again")
    scratch = ws.live_dir / f"rerun-{source.run_id}-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    code_tree = Path(tempfile.mkdtemp(prefix="labledger-rerun-")) if at_recorded_code else None
    try:
        workdir = code = None
        if code_tree is not None:
            recorded = source.code or CodeVersion()
            materialize(recorded, ws.store, ws.root, code_tree / "tree")
            repo_root = Path(recorded.repo_root or ws.root)
            workdir = code_tree / "tree" / ws.root.resolve().relative_to(repo_root.resolve())
            code = recorded
        restore_entries(ws.store, source.files["scripts"], scratch)
        record = new_run(ws, name=f"rerun of run {source.number}", base=source)
        record = execute_run(ws, echo, script_root=scratch, workdir=workdir, code=code)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if code_tree is not None:
            shutil.rmtree(code_tree, ignore_errors=True)
    diff = compare_outputs(source, record)
    record.rerun_outputs_match = diff.match
    ws.save(record)
    return record, diff
