"""Every route answers errors in the one JSON error body, and never with a 500."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

GHOST = "01JC0000000000000000000000"
BODIES: list[Any] = [None, {}, {"unexpected": [1, 2, 3]}, ["not", "an", "object"], "text"]


def routes(api: TestClient) -> list[tuple[str, str]]:
    """Every documented (method, path) of the app, from its OpenAPI schema."""
    paths = api.get("/openapi.json").json()["paths"]
    return [(method.upper(), path) for path, ops in paths.items() for method in sorted(ops)]


def test_every_route_answers_errors_in_one_shape(sqlite_api: TestClient) -> None:
    checked = 0
    for method, path in routes(sqlite_api):
        url = re.sub(r"\{[^}]+\}", GHOST, path)
        for body in BODIES if method in {"POST", "PUT", "PATCH"} else [None]:
            kwargs: dict[str, Any] = {}
            if body is not None:
                kwargs["json"] = body
            if path.endswith("/stream") or "events/stream" in path:
                continue  # endless by design; covered by its own tests
            response = sqlite_api.request(method, url, **kwargs)
            assert response.status_code < 500, (method, url, body, response.text)
            if response.status_code >= 400:
                data = response.json()
                assert isinstance(data.get("detail"), str), (method, url, data)
                error = data.get("error")
                assert isinstance(error, dict), (method, url, data)
                assert isinstance(error.get("code"), str) and error.get("message") == data["detail"]
            checked += 1
    assert checked > 20


@pytest.mark.parametrize("path", ["/no/such/route", "/experiment"])
def test_unknown_route_and_wrong_method_use_the_same_body(
    sqlite_api: TestClient, path: str
) -> None:
    response = sqlite_api.get(path)
    assert response.status_code in {404, 405}
    assert set(response.json()) == {"detail", "error"}
