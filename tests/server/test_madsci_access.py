"""The official MADSci 0.8.1 client in the configurations a lab uses with access control on.

1. The token in the server URL (``http://lab:<secret>@host:8002/``): httpx, which the MADSci
   client uses, sends it as HTTP Basic, which labledger accepts with the token as password.
2. No token at all, from a trusted network (``trusted_networks``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from labledger_fixtures import LiveServerFactory

pytestmark = [pytest.mark.madsci, pytest.mark.slow]

SCRIPT = """
import json, sys
from madsci.client.experiment_client import ExperimentClient
from madsci.common.types.client_types import ExperimentClientConfig
from madsci.common.types.experiment_types import ExperimentDesign

client = ExperimentClient(sys.argv[1], config=ExperimentClientConfig(retry_enabled=False))
out = {}
try:
    exp = client.start_experiment(ExperimentDesign(experiment_name="madsci auth"), run_name="r")
    out["id"] = str(exp.experiment_id)
    out["paused"] = client.pause_experiment(exp.experiment_id).status.value
    out["ended"] = client.end_experiment(exp.experiment_id).status.value
    out["listed"] = [str(e.experiment_id) for e in client.get_experiments(number=5)]
except Exception as exc:
    response = getattr(exc, "response", None)
    out["error"] = type(exc).__name__
    out["status"] = getattr(response, "status_code", None)
print(json.dumps(out))
"""


def _madsci(python: Path, url: str) -> dict[str, object]:
    done = subprocess.run(
        [str(python), "-c", SCRIPT, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _admin_token(base: str) -> str:
    with httpx.Client(base_url=base) as http:
        made = http.post("tokens", json={"name": "lab", "scope": "write"})
        made.raise_for_status()
        secret: str = made.json()["secret"]
        return secret


def test_madsci_client_with_the_token_in_the_url(
    live_server: LiveServerFactory, madsci_python: Path
) -> None:
    server = live_server()
    secret = _admin_token(server.url)
    refused = _madsci(madsci_python, server.url)
    assert refused == {"error": "HTTPStatusError", "status": 401}
    with_token = server.url.replace("http://", f"http://lab:{secret}@")
    report = _madsci(madsci_python, with_token)
    assert "error" not in report, report
    assert (report["paused"], report["ended"]) == ("paused", "completed")
    assert report["listed"] == [report["id"]]
    with httpx.Client(base_url=server.url, auth=("lab", secret)) as http:
        events = http.get(f"experiment/{report['id']}/events").json()
    assert {e["actor"] for e in events} == {"token:lab"}


def test_madsci_client_without_a_token_from_a_trusted_network(
    live_server: LiveServerFactory, madsci_python: Path
) -> None:
    server = live_server(env={"EXPERIMENT_TRUSTED_NETWORKS": '["127.0.0.0/8"]'})
    report = _madsci(madsci_python, server.url)
    assert "error" not in report, report
    assert report["ended"] == "completed"
    # trusted_scope is write: the trusted network may not make tokens (admin)
    with httpx.Client(base_url=server.url) as http:
        assert http.post("tokens", json={"name": "x", "scope": "admin"}).status_code == 403
