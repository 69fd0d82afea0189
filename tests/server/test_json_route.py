"""JSONBodyRoute answers every body exactly as FastAPI's own handler does: the same endpoint
mounted both ways, the same requests, the same status and bytes."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, FastAPI, Query
from fastapi.testclient import TestClient

from labledger.core.models import ExperimentRegistration
from labledger.server.deps import Actor, get_actor
from labledger.server.errors import install_error_handlers
from labledger.server.json_route import JSONBodyRoute
from labledger.server.rendering import JSONBody, json_response


async def register(registration: ExperimentRegistration, actor: Actor) -> JSONBody:
    return json_response({"registration": registration.model_dump(mode="json"), "actor": actor})


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    router = APIRouter()
    router.add_api_route("/fast", register, methods=["POST"], route_class_override=JSONBodyRoute)
    router.add_api_route("/standard", register, methods=["POST"])
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    with TestClient(app) as api:
        yield api


VALID = {"experiment_design": {"experiment_name": "titration", "parameters": {"x": 1.5}}}
JSON = {"content-type": "application/json"}

CASES: dict[str, tuple[bytes, dict[str, str]]] = {
    "valid": (json.dumps(VALID).encode(), JSON),
    "valid with charset": (
        json.dumps(VALID).encode(),
        {"content-type": "application/json; charset=utf-8"},
    ),
    "valid +json type": (json.dumps(VALID).encode(), {"content-type": "application/vnd.lab+json"}),
    "every field": (
        json.dumps(
            {
                **VALID,
                "run_name": "r",
                "status": "queued",
                "priority": 3,
                "not_before": "2026-01-01T00:00:00Z",
                "parameters": {"big": 2**70, "tiny": 1e-9, "text": "é ✓"},
                "metadata": {"nested": [1, {"a": None}]},
                "extra": "ignored",
            }
        ).encode(),
        JSON,
    ),
    "duplicate keys": (
        b'{"experiment_design": {"experiment_name": "a", "experiment_name": "b"}}',
        JSON,
    ),
    "missing design": (b'{"run_name": "r"}', JSON),
    "empty name": (b'{"experiment_design": {"experiment_name": ""}}', JSON),
    "wrong type": (b'{"experiment_design": {"experiment_name": "a"}, "priority": "high"}', JSON),
    "naive not_before": (
        b'{"experiment_design": {"experiment_name": "a"}, "not_before": "2026-01-01T00:00:00"}',
        JSON,
    ),
    "not json": (b"{not json", JSON),
    "empty body": (b"", JSON),
    "json null": (b"null", JSON),
    "array": (b"[]", JSON),
    "utf-16": (json.dumps(VALID).encode("utf-16"), JSON),
    "utf-8 with bom": (codecs.BOM_UTF8 + json.dumps(VALID).encode(), JSON),
    "not utf-8": (b'{"experiment_design": {"experiment_name": "\xff"}}', JSON),
    "text/plain": (json.dumps(VALID).encode(), {"content-type": "text/plain"}),
    "no content type": (json.dumps(VALID).encode(), {}),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_the_fast_route_answers_as_fastapi_does(client: TestClient, case: str) -> None:
    body, headers = CASES[case]
    fast = client.post("/fast", content=body, headers=headers)
    standard = client.post("/standard", content=body, headers=headers)
    assert (fast.status_code, fast.content) == (standard.status_code, standard.content)
    if case.startswith("valid"):
        assert fast.status_code == 200


def test_a_valid_body_gets_the_dependencies_the_endpoint_declares(client: TestClient) -> None:
    answer = client.post("/fast", json=VALID, headers={"X-Labledger-Actor": "robot-1"})
    assert answer.json()["actor"] == "robot-1"


def _not_async(registration: ExperimentRegistration) -> Any:
    raise AssertionError("never called")


async def _with_query(registration: ExperimentRegistration, n: Annotated[int, Query()] = 1) -> Any:
    raise AssertionError("never called")


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [(_not_async, "must be async"), (_with_query, "one body model and nothing else")],
    ids=["not async", "a query parameter"],
)
def test_an_endpoint_of_another_shape_is_refused_when_mounted(endpoint: Any, why: str) -> None:
    with pytest.raises(TypeError, match=why):
        APIRouter().add_api_route(
            "/x", endpoint, methods=["POST"], route_class_override=JSONBodyRoute
        )


def test_an_overridden_dependency_is_honoured() -> None:
    router = APIRouter()
    router.add_api_route("/fast", register, methods=["POST"], route_class_override=JSONBodyRoute)
    app = FastAPI()
    app.include_router(router)

    async def someone_else() -> str:
        return "override"

    app.dependency_overrides[get_actor] = someone_else
    with TestClient(app) as api:
        assert api.post("/fast", json=VALID).json()["actor"] == "override"
