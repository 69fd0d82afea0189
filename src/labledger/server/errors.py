"""Errors to HTTP: one JSON error body for every failure, built here and only here.

The body keeps MADSci's ``detail`` string (its clients and users read it) and adds a structured
``error`` object::

    {"detail": "Cannot change experiment 01J.. from 'completed' to 'in_progress' ...",
     "error": {"code": "illegal_transition", "message": "...", "current_status": "completed",
               "requested_status": "in_progress", ...}}
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from labledger.errors import (
    InvalidInput,
    LabledgerError,
    RangeNotSatisfiable,
    RateLimited,
    Unauthorized,
)

__all__ = ["error_body", "error_response", "install_error_handlers"]

log = logging.getLogger("labledger.server")


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """The one JSON error body."""
    return {"detail": message, "error": {"code": code, "message": message, **details}}


def error_response(exc: LabledgerError) -> JSONResponse:
    """The reply for an error of the tree: its status, the one body, and the headers it needs
    (``Retry-After`` when rate limited; ``Content-Range`` for a range past the end; the two
    authentication challenges when unauthorized)."""
    response = JSONResponse(error_body(exc.code, exc.message, **exc.details), exc.status_code)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, RangeNotSatisfiable):
        response.headers["Content-Range"] = f"bytes */{exc.size}"
    if isinstance(exc, Unauthorized):
        # two challenges: API clients read Bearer; a browser prompts for Basic (token = password)
        response.headers.append("WWW-Authenticate", 'Bearer realm="labledger"')
        response.headers.append("WWW-Authenticate", 'Basic realm="labledger", charset="UTF-8"')
    return response


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header"}:
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


def _validation_message(errors: list[dict[str, Any]]) -> tuple[str, str]:
    first = errors[0]
    field = _location(first.get("loc", ()))
    msg = str(first.get("msg", "invalid value"))
    if first.get("type") == "missing":
        msg = "Field required"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return field, f"{field}: {msg}{more}"


def install_error_handlers(app: FastAPI) -> None:
    """Map the error tree, validation errors and HTTP errors to the one body."""

    @app.exception_handler(LabledgerError)
    async def _labledger(request: Request, exc: LabledgerError) -> JSONResponse:
        if exc.status_code >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc.message)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg")), "type": e.get("type")}
            for e in exc.errors()
        ]
        field, message = _validation_message(errors)
        return error_response(InvalidInput(message, field=field, errors=errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        message = str(exc.detail)
        if exc.status_code == 400:
            # Starlette and FastAPI answer 400 for a body they cannot decode (not UTF-8, a broken
            # multipart form): to us that is a field with a bad value, like any other.
            if message == "There was an error parsing the body":
                message = "expected a JSON document in UTF-8; it could not be decoded"
            return error_response(InvalidInput(f"body: {message}", field="body"))
        if exc.status_code == 404 and message == "Not Found":
            message = f"No route {request.method} {request.url.path}"
        return JSONResponse(
            error_body(codes.get(exc.status_code, "http_error"), message),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(LabledgerError(f"internal error: {type(exc).__name__}"))
