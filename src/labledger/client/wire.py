"""What both clients share: base URL handling, the retry policy, request bodies and errors."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from labledger.client.calls import Call
from labledger.errors import LabledgerError, RemoteError, ServerUnreachable, error_class_for

__all__ = [
    "IDEMPOTENCY_HEADER",
    "RetryPolicy",
    "async_chunks",
    "base_url",
    "decode_error",
    "headers_for",
    "parse_response",
    "request_body",
    "sync_chunks",
    "unreachable",
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

    Reads are retried on transport errors and on 429/502/503/504. A POST that records something
    carries an Idempotency-Key, the same on every attempt, so it is retried on any transport
    error: the server answers a repeat with its first answer. Other POSTs are retried only when
    the server cannot have acted on them (the connection was never made, or it answered 429/503
    without doing anything).

    Requests are tried ``retries`` more times, and beyond that for as long as ``patience``
    seconds from the first attempt: a worker sets it to its lease, so a server restart does not
    fail the experiment it runs. Waits double from ``backoff`` up to ``max_delay``.
    """

    retries: int = 3
    backoff: float = 0.2
    patience: float = 0.0
    max_delay: float = 5.0
    retry_statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    unsent_safe_statuses: frozenset[int] = frozenset({429, 503})

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (honours Retry-After)."""
        if response is not None and (after := response.headers.get("Retry-After")):
            try:
                return min(float(after), 30.0)
            except ValueError:
                pass
        return float(min(self.backoff * (2**attempt), self.max_delay))

    def gives_up(self, attempt: int, started: float) -> bool:
        """Whether attempt ``attempt`` (from 0) begun at monotonic ``started`` was the last."""
        return attempt >= self.retries and time.monotonic() - started >= self.patience

    def should_retry_status(self, call: Call[Any], status: int) -> bool:
        """Whether an answer with ``status`` is worth another try."""
        if call.method in {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}:
            return status in self.retry_statuses
        return status in self.unsent_safe_statuses

    def should_retry_error(self, call: Call[Any], exc: httpx.TransportError) -> bool:
        """Whether a transport failure is worth another try."""
        if call.method in {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"} or call.idempotent:
            return True
        return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)


def headers_for(call: Call[Any]) -> dict[str, str]:
    """Per-request headers; recording calls get a fresh Idempotency-Key (kept across retries)."""
    return {IDEMPOTENCY_HEADER: str(uuid.uuid4())} if call.idempotent else {}


def sync_chunks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """A streamed body as the sync client sends it (as it is)."""
    return chunks


async def async_chunks(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """A streamed body as the async client sends it: httpx's async client streams only async
    iterables; the file reads behind ``chunks`` are short and local."""
    for chunk in chunks:
        yield chunk


@contextmanager
def request_body(
    call: Call[Any], stream: Callable[[Iterator[bytes]], Any]
) -> Iterator[dict[str, Any]]:
    """The body arguments of one attempt of ``call`` (a file is opened afresh for each)."""
    if call.upload is not None:
        upload = call.upload
        with upload.path.open("rb") as fh:
            yield {
                "files": {"file": (upload.path.name, fh, upload.media_type)},
                "data": {
                    "digest": upload.digest,
                    **({"worker_id": upload.worker_id} if upload.worker_id else {}),
                },
            }
    elif call.content is not None:
        yield {"content": stream(call.content())}
    else:
        yield {"json": call.json}


def unreachable(url: str, exc: httpx.TransportError) -> ServerUnreachable:
    """The error tree's name for a transport failure talking to the server at ``url``."""
    detail = str(exc)
    return ServerUnreachable(
        url.rstrip("/"), f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    )


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
            try:
                return cls.from_dict(message, details)
            except (KeyError, TypeError, ValueError):
                pass  # a server of another version: keep what it said, as a RemoteError
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
    return call.parse(response.text if call.text else response.json())
