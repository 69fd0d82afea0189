"""The real MADSci lab, started once per test session when a test asks for it."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_fixtures import MadsciLab, lab_venv_python

from labledger_fixtures import unavailable

#: one simulated instrument per concurrently running test workflow (pausing a workflow also
#: pauses its node, and two workflows sharing one can stall each other)
NODES = ("sim1", "sim2", "sim3", "sim4")


@pytest.fixture(scope="session")
def lab_python() -> Path:
    """The python of the cached venv holding the MADSci 0.8.1 managers."""
    try:
        return lab_venv_python()
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        unavailable(f"cannot install the MADSci managers: {exc}")


@pytest.fixture(scope="session")
def madsci_lab(lab_python: Path) -> Iterator[MadsciLab]:
    """Workcell, Location, Data, Event and Resource managers and four simulated instruments."""
    with tempfile.TemporaryDirectory(prefix="labledger-madsci-lab-") as root:
        lab = MadsciLab(Path(root), lab_python, NODES)
        lab.build()
        try:
            lab.start()
            yield lab
        finally:
            lab.stop()
