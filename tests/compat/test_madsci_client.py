"""The official MADSci 0.8.1 ``ExperimentClient`` works unchanged against ``labledger serve``.

The client runs in its own venv (``madsci_python``) as a subprocess, through
``madsci_client_script.py``, against a real server process on SQLite and on PostgreSQL. The script
writes what the client got; the tests here judge it. The ``seeded`` servers first hold planned and
queued experiments (states MADSci does not know), which the client must still list and get.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from labledger_fixtures import LiveServer, PgCluster, server_env

pytestmark = pytest.mark.madsci

SCRIPT = Path(__file__).with_name("madsci_client_script.py")
PARTS = ["sync", "async"]


@dataclass
class ClientRun:
    """One run of the official client against one server."""

    report: dict[str, Any]
    seeded: dict[str, str]  # experiment id -> the lifecycle status it was created with

    def part(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = self.report[name]
        return data


def run_official_client(
    python: Path, url: str, workdir: Path, get_ids: list[str] | tuple[str, ...] = ()
) -> dict[str, Any]:
    """Run the script in the MADSci venv; return its report."""
    out = workdir / "report.json"
    env = {
        k: v
        for k, v in server_env().items()
        if not k.startswith(("MADSCI_", "EXPERIMENT_CLIENT_", "VIRTUAL_ENV", "PYTHON"))
    }
    cmd = [str(python), str(SCRIPT), url, "--out", str(out)]
    for experiment_id in get_ids:
        cmd += ["--get", experiment_id]
    proc = subprocess.run(
        cmd,
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, (
        f"the MADSci client script crashed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def seed_unknown_states(url: str) -> dict[str, str]:
    """Create experiments in states MADSci 0.8.1 has no name for, over plain HTTP."""
    seeded: dict[str, str] = {}
    with httpx.Client(base_url=url, timeout=10) as http:
        for status in ("planned", "queued", "queued", "planned"):
            body = {"experiment_design": {"experiment_name": f"seeded {status}"}, "status": status}
            response = http.post("experiment", json=body)
            assert response.status_code in (200, 201), response.text
            data = response.json()
            assert data["status"] == "unknown", data
            assert data["lifecycle_status"] == status, data
            seeded[data["_id"]] = status
    return seeded


@contextlib.contextmanager
def _database(request: pytest.FixtureRequest, workdir: Path) -> Iterator[str]:
    if request.param.startswith("sqlite"):
        yield f"sqlite:///{workdir}/labledger.sqlite3"
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    name = cluster.create_database()
    try:
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def _client_run(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    madsci_python: Path,
    seed: bool,
) -> Iterator[ClientRun]:
    workdir = tmp_path_factory.mktemp(f"madsci-{request.param}")
    with _database(request, workdir) as db_url:
        server = LiveServer(db_url=db_url, workdir=workdir, env=server_env())
        server.start()
        try:
            seeded = seed_unknown_states(server.url) if seed else {}
            report = run_official_client(madsci_python, server.url, workdir, tuple(seeded))
            yield ClientRun(report=report, seeded=seeded)
        finally:
            server.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def client_run(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    madsci_python: Path,
) -> Iterator[ClientRun]:
    """The official client's full tour against a fresh server."""
    yield from _client_run(request, tmp_path_factory, madsci_python, seed=False)


@pytest.fixture(scope="module", params=BACKENDS)
def seeded_run(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    madsci_python: Path,
) -> Iterator[ClientRun]:
    """The same tour against a server that already holds planned and queued experiments."""
    yield from _client_run(request, tmp_path_factory, madsci_python, seed=True)


def errors_text(report: dict[str, Any]) -> str:
    return "\n".join(
        f"{call}: {e.get('status_code', '')} {e['type']}: {e['message']}\n{e.get('body', '')}"
        for call, e in report["errors"].items()
    )


# --------------------------------------------------------------------------------------------


def test_every_client_call_succeeds(client_run: ClientRun) -> None:
    assert client_run.report["errors"] == {}, errors_text(client_run.report)


@pytest.mark.parametrize("part", PARTS)
def test_start_experiment_returns_it_in_progress_with_its_design(
    client_run: ClientRun, part: str
) -> None:
    started = client_run.part(part)["started"]
    assert started is not None
    assert started["status"] == "in_progress"
    assert started["started_at_set"] is True
    assert started["ended_at_set"] is False
    assert started["experiment_name"] == f"compat {part}"
    assert (started["run_name"], started["run_description"]) == ("r1", "rd")
    assert started["condition_types"] == ["resource_present"]
    assert started["condition_locations"] == ["deck1"]
    assert started["ownership_user_id"] == client_run.report["user_id"]
    assert started["ownership_project_id"] == client_run.report["project_id"]


@pytest.mark.parametrize("part", PARTS)
def test_get_experiment_round_trips_the_id(client_run: ClientRun, part: str) -> None:
    # The client reads the id only from "_id"; anything else would give it a random new ULID.
    data = client_run.part(part)
    assert data["got"] == data["started"]


def test_the_id_is_sent_under_the_underscore_id_key(client_run: ClientRun) -> None:
    assert "_id" in client_run.report["raw_keys"]


@pytest.mark.parametrize("part", PARTS)
def test_pause_continue_cancel(client_run: ClientRun, part: str) -> None:
    data = client_run.part(part)
    exp_id = data["started"]["id"]
    steps = [(name, data[name]) for name in ("paused", "continued", "cancelled")]
    assert [(name, s["id"], s["status"]) for name, s in steps] == [
        ("paused", exp_id, "paused"),
        ("continued", exp_id, "in_progress"),
        ("cancelled", exp_id, "cancelled"),
    ]
    assert [s["ended_at_set"] for _, s in steps] == [False, False, True]


@pytest.mark.parametrize("part", PARTS)
def test_end_without_status_completes(client_run: ClientRun, part: str) -> None:
    ended = client_run.part(part)["ended"]
    assert ended["status"] == "completed"
    assert ended["ended_at_set"] is True


@pytest.mark.parametrize("part", PARTS)
def test_end_with_status_failed_is_recorded_as_failed(client_run: ClientRun, part: str) -> None:
    # The client sends ?status=ExperimentStatus.FAILED; MADSci 0.8.1 itself records "completed".
    data = client_run.part(part)
    assert data["ended_failed"]["status"] == "failed"
    assert data["ended_failed"]["ended_at_set"] is True
    assert data["failed_reread"] == data["ended_failed"]


def test_get_experiments_lists_the_latest_first(client_run: ClientRun) -> None:
    sync = client_run.part("sync")
    newest_first = [sync["ended_failed"]["id"], sync["ended"]["id"], sync["started"]["id"]]
    assert sync["listed_5"] == newest_first
    listed = {e["id"]: e["status"] for e in sync["listed"]}
    assert listed == {
        sync["started"]["id"]: "cancelled",
        sync["ended"]["id"]: "completed",
        sync["ended_failed"]["id"]: "failed",
    }


def test_async_get_experiments_sees_both_parts(client_run: ClientRun) -> None:
    listed = [e["id"] for e in client_run.part("async")["listed"]]
    assert len(listed) == 6
    for part in PARTS:
        data = client_run.part(part)
        for key in ("started", "ended", "ended_failed"):
            assert data[key]["id"] in listed


@pytest.mark.parametrize("part", PARTS)
def test_campaigns_register_get_and_list(client_run: ClientRun, part: str) -> None:
    data = client_run.part(part)
    registered = data["campaign_registered"]
    assert registered is not None
    assert registered["id"] == data["campaign_sent_id"]
    assert registered["name"] == f"compat campaign {part}"
    assert registered["experiment_ids"] == data["campaign_linked"]
    assert len(data["campaign_linked"]) == 2
    assert data["campaign_got"] == registered
    assert registered["id"] in data["campaigns_listed"]


def test_campaigns_listed_after_both_registrations(client_run: ClientRun) -> None:
    ids = {client_run.part(part)["campaign_registered"]["id"] for part in PARTS}
    assert ids <= set(client_run.part("async")["campaigns_listed"])


# --------------------------------------------------------------------------------------------
# The server also holds planned and queued experiments


def test_with_planned_and_queued_experiments_every_call_succeeds(seeded_run: ClientRun) -> None:
    assert seeded_run.report["errors"] == {}, errors_text(seeded_run.report)


@pytest.mark.parametrize("part", PARTS)
def test_planned_and_queued_experiments_list_as_unknown(seeded_run: ClientRun, part: str) -> None:
    listed = {e["id"]: e["status"] for e in seeded_run.part(part)["listed"]}
    assert {i: listed.get(i) for i in seeded_run.seeded} == dict.fromkeys(
        seeded_run.seeded, "unknown"
    )


@pytest.mark.parametrize("part", PARTS)
def test_planned_and_queued_experiments_get_as_unknown(seeded_run: ClientRun, part: str) -> None:
    got = seeded_run.part(part)["got_extra"]
    assert set(got) == set(seeded_run.seeded)
    for experiment_id, facts in got.items():
        assert facts["id"] == experiment_id
        assert facts["status"] == "unknown"
        assert facts["started_at_set"] is False
        assert facts["ended_at_set"] is False


@pytest.mark.parametrize("part", PARTS)
def test_lifecycle_still_works_beside_planned_and_queued(seeded_run: ClientRun, part: str) -> None:
    data = seeded_run.part(part)
    assert data["cancelled"]["status"] == "cancelled"
    assert data["ended"]["status"] == "completed"
    assert data["ended_failed"]["status"] == "failed"
    assert data["campaign_got"]["experiment_ids"] == data["campaign_linked"]


def test_the_client_runs_in_its_own_venv(madsci_python: Path) -> None:
    # The harness is only worth something if the client under test is the official one.
    code = (
        "import importlib.metadata as m, json, pydantic;"
        "print(json.dumps([m.version('madsci.client'), pydantic.VERSION]))"
    )
    proc = subprocess.run(
        [str(madsci_python), "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    madsci_version, pydantic_version = json.loads(proc.stdout)
    assert madsci_version == "0.8.1"
    assert tuple(int(p) for p in pydantic_version.split(".")[:2]) < (2, 14)
