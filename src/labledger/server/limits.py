"""Limits: request body size, upload size and (optionally) requests per client.

* A body over ``max_body_bytes`` (uploads: multipart bodies and ``PUT /blobs/{digest}``,
  ``max_upload_bytes``) is refused with 413
  naming the limit, from its Content-Length before anything is read, or as soon as a chunked
  body passes the limit.
* With ``rate_limit`` > 0 each client (its token, else its address) gets a token bucket of
  ``rate_limit_burst`` requests refilled at ``rate_limit`` per second; over it: 429 with
  ``Retry-After``. Loopback clients are exempt (the instruments' own machine, and tests).

Routes that store uploads use :func:`copy_limited` to enforce ``max_upload_bytes`` on each file
while they stream it.
"""

from __future__ import annotations

import math
import re
import time
from typing import IO

from starlette.exceptions import HTTPException

from labledger.errors import PayloadTooLarge, RateLimited
from labledger.server.errors import error_response
from labledger.server.security import ASGIApp, Message, Receive, Scope_, Send, client_host
from labledger.server.security import is_loopback as _is_loopback
from labledger.settings import Settings

__all__ = [
    "BodyLimitMiddleware",
    "RateLimitMiddleware",
    "copy_limited",
    "format_bytes",
    "too_large",
]


def format_bytes(n: int) -> str:
    """``n`` bytes in the largest binary unit that keeps it whole-ish (``8 MiB``)."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:g} {unit}" if unit != "bytes" else f"{n} bytes"
        value /= 1024
    raise AssertionError("unreachable")


def too_large(what: str, limit: int, setting: str) -> PayloadTooLarge:
    """The 413 error for ``what`` over ``limit`` bytes, naming the setting that sets it."""
    return PayloadTooLarge(
        f"{what} is larger than the limit of {format_bytes(limit)} ({limit} bytes; "
        f"setting {setting}, EXPERIMENT_{setting.upper()})",
        limit=limit,
        setting=setting,
    )


def copy_limited(src: IO[bytes], dst: IO[bytes], limit: int, *, chunk: int = 1 << 20) -> int:
    """Copy ``src`` to ``dst``; raise :class:`PayloadTooLarge` past ``limit`` bytes.

    Returns the number of bytes copied. The caller removes a partial ``dst`` on error.
    """
    total = 0
    while block := src.read(chunk):
        total += len(block)
        if total > limit:
            raise too_large("The uploaded file", limit, "max_upload_bytes")
        dst.write(block)
    return total


#: a pushed file's content (``labledger push``), held to the upload limit like a multipart file
_BLOB_PUT = re.compile(r"/blobs/[0-9a-f]{64}")


def _is_upload(scope: Scope_) -> bool:
    """True for requests that carry a file: multipart bodies and ``PUT /blobs/{digest}``."""
    if scope.get("method") == "PUT" and _BLOB_PUT.fullmatch(scope.get("path", "")):
        return True
    for name, value in scope.get("headers") or []:
        if name == b"content-type":
            return bool(value.lower().startswith(b"multipart/"))
    return False


class BodyLimitMiddleware:
    """413 for bodies over the configured size."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _is_upload(scope):
            limit, setting, what = self.settings.max_upload_bytes, "max_upload_bytes", "The upload"
        else:
            limit, setting, what = self.settings.max_body_bytes, "max_body_bytes", "The body"
        declared = next((v for k, v in scope.get("headers") or [] if k == b"content-length"), None)
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length > limit:
                exc = too_large(f"{what} ({length} bytes)", limit, setting)
                await error_response(exc)(scope, receive, send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Raised inside the app's body read: FastAPI re-raises HTTPException, and
                    # the app's handler turns it into the one error body.
                    exc = too_large(what, limit, setting)
                    raise HTTPException(exc.status_code, detail=exc.message)
            return message

        await self.app(scope, limited, send)


class RateLimitMiddleware:
    """A token bucket per client; 429 with Retry-After when it is empty."""

    #: forget clients idle this long (seconds), so the table cannot grow without bound
    IDLE = 600.0

    def __init__(self, app: ASGIApp, rate: float, burst: int) -> None:
        self.app = app
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._swept = time.monotonic()

    def _take(self, client: str, now: float) -> float:
        """Take one request from ``client``'s bucket; return 0, or seconds until one is free."""
        tokens, last = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            return 0.0
        self._buckets[client] = (tokens, now)
        return (1.0 - tokens) / self.rate

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        host = client_host(scope) if scope["type"] == "http" else ""
        if scope["type"] != "http" or _is_loopback(host):
            await self.app(scope, receive, send)
            return
        state = scope.get("state") or {}
        client = f"token:{state['token_name']}" if "token_name" in state else f"ip:{host}"
        now = time.monotonic()
        if now - self._swept > self.IDLE:
            self._swept = now
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < self.IDLE}
        wait = self._take(client, now)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            message = (
                f"Too many requests from {client}: the limit is {self.rate:g} per second "
                f"(burst {self.burst:g}; settings rate_limit, rate_limit_burst). "
                f"Retry after {retry_after} s"
            )
            await error_response(RateLimited(message, retry_after=retry_after))(
                scope, receive, send
            )
            return
        await self.app(scope, receive, send)
