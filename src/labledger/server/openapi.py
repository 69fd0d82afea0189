"""Make the OpenAPI document tell the truth about errors.

Every error answer is the one JSON error body (:func:`labledger.server.errors.error_body`), but
FastAPI documents 422 as its own ``HTTPValidationError`` (``detail`` a list) on routes that do not
say otherwise, and knows nothing of the answers the middleware gives (401, 403, 413, 429). This
rewrites the generated document once: every 422 points at ``ErrorBody``, and each operation lists
the middleware's answers that can reach it. The fuzz test holds the app to this document.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI

from labledger.server.schemas import ErrorBody
from labledger.server.security import OPEN_PATHS

__all__ = ["document_errors"]

_REF = "#/components/schemas/ErrorBody"
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def _error_components() -> dict[str, Any]:
    generated = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = generated.pop("$defs", {})
    return {**defs, "ErrorBody": generated}


def _answer(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF}}},
    }
    if retry_after:
        answer["headers"] = {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
        }
    return answer


def _rewrite(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, component in _error_components().items():
        schemas.setdefault(name, component)
    text = json.dumps(document).replace(
        '"#/components/schemas/HTTPValidationError"', json.dumps(_REF)
    )
    document = json.loads(text)
    schemas = document["components"]["schemas"]
    schemas.pop("HTTPValidationError", None)
    if "#/components/schemas/ValidationError" not in json.dumps(document):
        schemas.pop("ValidationError", None)
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            if path not in OPEN_PATHS:
                responses.setdefault("401", _answer("A token is needed, or it is not valid"))
                responses.setdefault("403", _answer("The token's scope does not allow this"))
                responses.setdefault(
                    "429", _answer("Too many requests from this client", retry_after=True)
                )
            if method in {"post", "put", "patch"}:
                responses.setdefault("413", _answer("The body is over a size limit"))
            if "parameters" in operation or "requestBody" in operation:
                responses.setdefault("422", _answer("A field has a bad value (named in it)"))
    return document


def document_errors(app: FastAPI) -> None:
    """Have ``app.openapi()`` return the document with the error answers as they are."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _rewrite(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
