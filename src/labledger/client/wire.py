"""What both clients share: base URL handling, the retry policy and error decoding."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from labledger.client.calls import Call
from labledger.errors import LabledgerError, RemoteError, error_class_for

__all__ = [
    "IDEMPOTENCY_HEADER",
    "RetryPolicy",
    "base_url",
    "decode_error",
    "headers_for",
    "parse_response",
]

IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_URL = "http://127.0.0.1:8002"


def base_url(url: str | None) -> str:
    """The server URL with exactly one trailing slash (so paths join under it)."""
    url = url or os.environ.get("EXPERIMENT_SERVER_URL") or DEFAULT_URL
    return url.rstrip("/") + "/"


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a request again.

    Reads are retried on transport errors and on 429/502/503/504. A POST is retried only when
    the server cannot have acted on it (the connection was never made, or it answered 429/503
    without doing anything), and it always carries the same Idempotency-Key, so even then the
    server never creates twice.
    """

    retries: int = 3
    backoff: float = 0.2
    retry_statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    unsent_safe_statuses: frozenset[int] = frozenset({429, 503})

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (honours Retry-After)."""
        if response is not None and (after := response.headers.get("Retry-After")):
            try:
                return min(float(after), 30.0)
            except ValueError:
                pass
        return float(self.backoff * (2**attempt))

    def should_retry_status(self, method: str, status: int) -> bool:
        """Whether an answer with ``status`` is worth another try."""
        if method in {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}:
            return status in self.retry_statuses
        return status in self.unsent_safe_statuses

    def should_retry_error(self, method: str, exc: httpx.TransportError) -> bool:
        """Whether a transport failure is worth another try."""
        if method in {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}:
            return True
        return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


def headers_for(call: Call[Any]) -> dict[str, str]:
    """Per-request headers; creating calls get a fresh Idempotency-Key (kept across retries)."""
    return {IDEMPOTENCY_HEADER: str(uuid.uuid4())} if call.idempotent_create else {}


def decode_error(response: httpx.Response) -> LabledgerError:
    """Turn an error answer into the matching class of the error tree."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        details = {k: v for k, v in error.items() if k not in {"code", "message"}}
        message = str(error.get("message") or body.get("detail"))
        cls = error_class_for(error["code"])
        if cls is not None and cls is not RemoteError:
            exc = cls.__new__(cls)
            LabledgerError.__init__(exc, message, **details)
            for key, value in details.items():
                if not hasattr(exc, key):
                    setattr(exc, key, value)
            exc.http_status = response.status_code  # type: ignore[attr-defined]
            return exc
        return RemoteError(message, status_code=response.status_code, **details)
    detail = body.get("detail") if isinstance(body, dict) else None
    text = str(detail) if detail else (response.text[:500] or response.reason_phrase)
    return RemoteError(
        f"{response.request.method} {response.request.url} answered {response.status_code}: {text}",
        status_code=response.status_code,
    )


def parse_response(call: Call[Any], response: httpx.Response) -> Any:
    """The parsed answer of a successful call, or raise the decoded error."""
    if response.status_code >= 400:
        raise decode_error(response)
    if not call.expect_body or response.status_code == 204:
        return call.parse(None)
    return call.parse(response.json())
