"""The real MADSci lab, started once per test session when a test asks for it."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.lab_fixtures import MadsciLab, lab_venv_python
from labledger_fixtures import LiveServer, PgCluster, server_env, unavailable

# the module's headless Chromium, shared with the web UI's browser tests
from server.test_ui_browser import browser  # noqa: F401

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


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ],
)
def lab_server(
    request: pytest.FixtureRequest,
    madsci_lab: MadsciLab,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    """``labledger serve`` in the MADSci lab (one per module and backend), its sweeps quick."""
    workdir = tmp_path_factory.mktemp("lab-server")
    pg_name: str | None = None
    if request.param == "postgres":
        cluster: PgCluster = request.getfixturevalue("pg_cluster")
        pg_name = cluster.create_database()
        db_url = cluster.url(pg_name)
    else:
        db_url = f"sqlite:///{workdir}/labledger.sqlite3"
    server = LiveServer(
        db_url=db_url,
        workdir=workdir,
        env=server_env(
            {
                "EXPERIMENT_DATA_DIR": str(workdir),
                "EXPERIMENT_SWEEP_INTERVAL": "0.5",
                **madsci_lab.labledger_env(),
            }
        ),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
        if pg_name is not None:
            cluster.drop_database(pg_name)
