"""Refuse, before any route runs, input that no backend can store as given (see
:mod:`labledger.core.strict`): 422 with the one error body naming the field.

Checked here: the path, every query parameter, and JSON bodies (parsed once more, strictly).
Multipart form fields are checked by the upload route itself.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from labledger.core.strict import problem_in, text_problem
from labledger.errors import InvalidInput, PayloadTooLarge
from labledger.server.errors import error_response
from labledger.server.security import ASGIApp, Message, Receive, Scope_, Send

__all__ = ["StrictInputMiddleware"]


def _refusal(field: str, why: str) -> JSONResponse:
    return error_response(InvalidInput(f"{field}: {why}; nothing was stored", field=field))


def _is_json(scope: Scope_) -> bool:
    for name, value in scope.get("headers") or []:
        if name == b"content-type":
            kind = bytes(value).split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return True  # FastAPI reads a body without a content type as JSON


#: what JSON text must contain to parse into a value :func:`problem_in` refuses: the escapes of
#: NUL and of surrogates (raw, neither is valid JSON text), NaN/Infinity, and numbers that read
#: as infinity (a large exponent, or some 300 digits)
_ESCAPES = re.compile(rb"\\u0000|\\u[dD][89a-fA-F]")


def _number_shape(byte: int) -> int:
    char = chr(byte)
    if char in "0123456789":
        return ord("0")
    if char in "eE":
        return ord("e")
    return byte if char == "+" else ord(" ")


#: every digit as b"0", e/E as b"e", b"+" kept, anything else a space: the number patterns
#: become plain substrings, found at memory speed (a regex tried at every byte of a metrics
#: batch cost more than validating it)
_NUMBER_SHAPES = bytes(_number_shape(byte) for byte in range(256))


def _may_hold_a_problem(raw: bytes) -> bool:
    """A cheap scan (about a nanosecond a byte), so that ordinary bodies are not parsed twice."""
    if b"NaN" in raw or b"Infinity" in raw:
        return True
    if b"\\u" in raw and _ESCAPES.search(raw) is not None:
        return True
    shapes = raw.translate(_NUMBER_SHAPES)
    # [eE]\+?[0-9]{3}: an exponent of three digits or more; [0-9]{300}: some 300 digits
    return b"e000" in shapes or b"e+000" in shapes or b"0" * 300 in shapes


def _reject_constant(name: str) -> Any:
    return float(name)  # NaN, Infinity, -Infinity: found by the walk, which names the field


class StrictInputMiddleware:
    """422 for a NUL, a lone surrogate or a non-finite number anywhere in a request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if (why := text_problem(scope.get("path", ""))) is not None:
            await _refusal("path", why)(scope, receive, send)
            return
        query = (scope.get("query_string") or b"").decode("latin-1")
        if "%00" in query or "\x00" in query:
            for key, value in parse_qsl(query, keep_blank_values=True):
                if (why := text_problem(key) or text_problem(value)) is not None:
                    await _refusal(key or "query", why)(scope, receive, send)
                    return
        if scope["method"] not in ("POST", "PUT", "PATCH") or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        try:
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request" or not message.get("more_body", False):
                    break
        except HTTPException as exc:  # the body limit, raised while reading
            await error_response(PayloadTooLarge(str(exc.detail)))(scope, receive, send)
            return
        raw = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        if raw and _may_hold_a_problem(raw):
            try:
                parsed = json.loads(raw, parse_constant=_reject_constant)
            except (ValueError, RecursionError):
                parsed = None  # not JSON: the route's own validation says so
            found = problem_in(parsed) if parsed is not None else None
            if found is not None:
                await _refusal(*found)(scope, receive, send)
                return

        replay = iter(messages)

        async def replayed() -> Message:
            try:
                return next(replay)
            except StopIteration:
                return await receive()

        await self.app(scope, replayed, send)
