"""Run a past run again: its archived scripts and variables, then compare the outputs."""

from __future__ import annotations

import os
import shutil

from labledger.archive.manifest import restore_entries
from labledger.errors import InvalidInput
from labledger.runner.closing import OutputsDiff, compare_outputs
from labledger.runner.record import RunRecord
from labledger.runner.session import Echo, execute_run, new_run
from labledger.runner.workspace import Workspace

__all__ = ["rerun"]


def rerun(ws: Workspace, ref: str, echo: Echo) -> tuple[RunRecord, OutputsDiff]:
    """Start a new run with the scripts and variables of run ``ref``, run it, compare outputs.

    The past run's scripts are restored to a scratch folder and run from there, so the
    scripts in the experiment folder are left as they are.
    """
    source = ws.resolve(ref)
    if not source.files.get("scripts"):
        raise InvalidInput(f"Run {source.number} never ran: it has no scripts to run again")
    scratch = ws.live_dir / f"rerun-{source.run_id}-{os.getpid()}"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        restore_entries(ws.store, source.files["scripts"], scratch)
        record = new_run(ws, name=f"rerun of run {source.number}", base=source)
        record = execute_run(ws, echo, script_root=scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    diff = compare_outputs(source, record)
    record.rerun_outputs_match = diff.match
    ws.save(record)
    ws.index.sync()
    return record, diff
