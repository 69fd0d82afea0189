"""Schemathesis against the app's own OpenAPI schema: no 5xx, every answer as documented.

Each operation gets a bounded number of generated requests with a fixed seed (derandomized), so
the run is repeatable and stays within the suite's time budget. The checks: no server error,
the status code is one the schema lists for the operation, and the body matches the schema of
that status. The number of requests made and of 5xx answers is printed at the end.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from labledger.server.app import create_app
from labledger.settings import Settings

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 25
TALLY: dict[str, int] = {"requests": 0, "server_errors": 0, "operations": 0}


def _seeded_app(*, read_token: bool = False) -> Any:
    """The real app over a fresh SQLite file, with an experiment and a campaign in it.

    Built when the module is collected: schemathesis parametrizes from a loaded schema (its
    ``from_fixture`` does not work with pytest 9), and the app has no lifespan to run.
    """
    from labledger.core.models import ExperimentRegistration
    from labledger.core.specs import CampaignSpec

    data = Path(tempfile.mkdtemp(prefix="labledger-fuzz-"))
    app = create_app(Settings(db_url=f"sqlite:///{data / 'fuzz.sqlite3'}", data_dir=data))
    app.state.fuzz_dir = data
    service = app.state.lab.experiments
    service.create_experiment(
        ExperimentRegistration.model_validate({"experiment_design": {"experiment_name": "seed"}})
    )
    app.state.lab.campaigns.create(CampaignSpec(campaign_name="seed"))
    if read_token:
        # access control on; the fuzzer holds a read token, so every change must answer 403
        app.state.lab.tokens.create("fuzz-admin", "admin")
        _, app.state.read_secret = app.state.lab.tokens.create("fuzz-reader", "read")
    return app


APP = _seeded_app()
GUARDED = _seeded_app(read_token=True)
#: the fixed seed, the fuzzing phase only (the coverage phase alone would take minutes here)
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20261121,
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=CONFIG)
guarded = schemathesis.openapi.from_asgi(  # the schema itself needs the token to be read
    "/openapi.json",
    GUARDED,
    config=CONFIG,
    headers={"Authorization": f"Bearer {GUARDED.state.read_secret}"},
)


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    for app in (APP, GUARDED):
        app.state.lab.close()
        shutil.rmtree(app.state.fuzz_dir, ignore_errors=True)
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    assert capture is not None
    with capture.global_and_fixture_disabled():
        print(
            f"\n[fuzz] {TALLY['requests']} generated requests over {TALLY['operations']} "
            f"operation runs (open, and with a read token), {TALLY['server_errors']} answered 5xx"
        )


_seen: set[str] = set()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_every_answer_as_documented(case: Any, tally: None) -> None:
    label = case.operation.label
    if label not in _seen:
        _seen.add(label)
        TALLY["operations"] += 1
    response = case.call()
    TALLY["requests"] += 1
    if response.status_code >= 500:
        TALLY["server_errors"] += 1
    case.validate_response(
        response,
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )


@guarded.parametrize()
@settings(
    max_examples=5,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_with_a_read_token_changes_are_refused_as_documented(case: Any, tally: None) -> None:
    label = f"read token: {case.operation.label}"
    if label not in _seen:
        _seen.add(label)
        TALLY["operations"] += 1
    response = case.call(headers={"Authorization": f"Bearer {GUARDED.state.read_secret}"})
    TALLY["requests"] += 1
    if response.status_code >= 500:
        TALLY["server_errors"] += 1
    if case.method.upper() not in {"GET", "HEAD", "OPTIONS"}:
        assert response.status_code == 403, response.text
    case.validate_response(
        response,
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )
