"""``Idempotency-Key`` on POST: a retried create gets the first answer and creates nothing.

How (see :mod:`labledger.core.idempotency` and :mod:`labledger.storage.idempotency_sql`):

1. A POST with a key whose answer is remembered is answered from memory, after checking that it
   is the same request (method, path, query and body); a different request with a used key is
   refused with 422.
2. Otherwise the request runs with a claim (``request.state``, read by the ``Claim``
   dependency and handed to the use case that creates a record); the store writes the key in
   the same transaction as the record it creates, under a unique constraint. Of concurrent
   twins exactly one commits; the others roll back and get the winner's answer.
3. The answer sent is remembered next to the key. Should the server die between the commit and
   that write, a retry gets the created record as it is now (for experiments and campaigns).

Keys are scoped to the token that sent them (anonymous clients share one scope) and are
forgotten after ``idempotency_hours``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import anyio
import anyio.to_thread
from starlette.responses import Response

from labledger.core.idempotency import IdempotencyClaim, StoredAnswer
from labledger.core.ids import utcnow
from labledger.core.lab import Lab
from labledger.core.models import campaign_to_wire, experiment_to_wire
from labledger.errors import DuplicateRequest, InvalidInput, LabledgerError
from labledger.server.deps import CLAIM_STATE
from labledger.server.errors import error_response
from labledger.server.lab import ServerLab
from labledger.server.security import ASGIApp, Message, Receive, Scope_, Send

__all__ = ["HEADER", "MAX_KEY_LENGTH", "RENDERERS", "REPLAYED_HEADER", "IdempotencyMiddleware"]

log = logging.getLogger("labledger.server")

HEADER = b"idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 200
#: how long a twin waits for the first request's answer before it re-reads the record
WAIT_SECONDS = 5.0
#: at most this often the expired keys are deleted
SWEEP_SECONDS = 600.0


def _experiment(lab: Lab, resource_id: str) -> Any:
    return experiment_to_wire(lab.store.experiments.get(resource_id, include_deleted=True))


def _campaign(lab: Lab, resource_id: str) -> Any:
    return campaign_to_wire(lab.experiments.get_campaign(resource_id))


#: resource kind -> the JSON of the record as it is now (used when the first answer was lost)
RENDERERS: dict[str, Callable[[Lab, str], Any]] = {
    "experiment": _experiment,
    "campaign": _campaign,
}


def _body_counts(scope: Scope_) -> bool:
    """Whether the body is part of the request's fingerprint.

    Not for multipart: its boundary is random per attempt, so a faithful retry would look like
    another request. The method, path and query still must match.
    """
    for name, value in scope.get("headers") or []:
        if name == b"content-type":
            return not value.lower().startswith(b"multipart/")
    return True


def _fingerprint_start(scope: Scope_) -> Any:
    hasher = hashlib.sha256()
    hasher.update(scope["method"].encode() + b" " + scope["path"].encode("utf-8", "replace"))
    hasher.update(b"?" + (scope.get("query_string") or b"") + b"\n")
    return hasher


class IdempotencyMiddleware:
    """Honour Idempotency-Key on POST requests (see the module docstring)."""

    def __init__(self, app: ASGIApp, lab: ServerLab) -> None:
        self.app = app
        self.lab = lab
        self.keys = lab.idempotency
        self.ttl = timedelta(hours=lab.settings.idempotency_hours)
        self._swept = -1e9
        self._pending: list[tuple[str, str, int, str]] = []
        self._flushing = False

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope.get("headers") or [] if k == HEADER), None)
        if raw is None:
            await self.app(scope, receive, send)
            return
        key = raw.decode("latin-1").strip()
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            await error_response(
                InvalidInput(
                    f"Idempotency-Key: expected 1 to {MAX_KEY_LENGTH} characters, got {len(key)}",
                    field="Idempotency-Key",
                )
            )(scope, receive, send)
            return
        principal = str((scope.get("state") or {}).get("principal", ""))
        try:
            await self._sweep()
            stored = await anyio.to_thread.run_sync(self.keys.find, principal, key)
            if stored is not None and stored.created_at < utcnow() - self.ttl:
                # remembered longer than promised: the key is free again
                await anyio.to_thread.run_sync(self.keys.forget, principal, key)
                stored = None
        except LabledgerError as exc:  # the database is unreachable: 503, as any route would
            await error_response(exc)(scope, receive, send)
            return
        if stored is not None:
            fingerprint = await self._drain(scope, receive)
            await self._replay(scope, receive, send, principal, key, fingerprint, stored)
            return
        await self._first(scope, receive, send, principal, key)

    async def _sweep(self) -> None:
        if time.monotonic() - self._swept > SWEEP_SECONDS:
            self._swept = time.monotonic()
            await anyio.to_thread.run_sync(self.keys.forget_before, utcnow() - self.ttl)

    async def _drain(self, scope: Scope_, receive: Receive) -> str:
        """Read (and hash) the whole body of a request that will be answered from memory."""
        hasher = _fingerprint_start(scope)
        counts = _body_counts(scope)
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            if counts:
                hasher.update(message.get("body", b""))
            if not message.get("more_body", False):
                break
        return str(hasher.hexdigest())

    async def _first(
        self, scope: Scope_, receive: Receive, send: Send, principal: str, key: str
    ) -> None:
        hasher = _fingerprint_start(scope)
        claim = IdempotencyClaim(
            principal=principal,
            key=key,
            method=scope["method"],
            path=scope["path"],
            fingerprint=hasher.copy().hexdigest(),
        )

        counts = _body_counts(scope)

        async def hashing() -> Message:
            message = await receive()
            if counts and message["type"] == "http.request":
                hasher.update(message.get("body", b""))
                claim.fingerprint = hasher.copy().hexdigest()
            return message

        # The answer is held back until we know whether this request won its key.
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        scope.setdefault("state", {})[CLAIM_STATE] = claim
        await self.app(scope, hashing, hold)
        start = next((m for m in held if m["type"] == "http.response.start"), None)
        status = int(start["status"]) if start else 500
        if claim.resource_id is None and (claim.lost or status >= 400):
            # A twin may have won the key (its record made ours fail, or ours lost the key).
            try:
                stored = await anyio.to_thread.run_sync(self.keys.find, principal, key)
            except LabledgerError:
                stored = None  # our own answer (an error) goes out as it is
            if stored is not None:
                await self._replay(scope, receive, send, principal, key, claim.fingerprint, stored)
                return
        for message in held:
            await send(message)
        if claim.resource_id is not None and 200 <= status < 300:
            # Kept after it was sent: a retry arriving meanwhile waits for it (WAIT_SECONDS),
            # and should this never be written, a retry gets the record as it is.
            body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
            await self._keep((principal, key, status, body.decode("utf-8", "replace")))

    async def _keep(self, answer: tuple[str, str, int, str]) -> None:
        """Queue an answer; whoever finds no flush running writes the queue, in batches, so
        concurrent creates share one write transaction for their answers."""
        self._pending.append(answer)
        if self._flushing:
            return
        self._flushing = True
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await anyio.to_thread.run_sync(self.keys.store_answers, batch)
                except LabledgerError as exc:
                    log.warning("could not keep %d idempotent answers: %s", len(batch), exc)
        finally:
            self._flushing = False

    async def _replay(
        self,
        scope: Scope_,
        receive: Receive,
        send: Send,
        principal: str,
        key: str,
        fingerprint: str,
        stored: StoredAnswer,
    ) -> None:
        if stored.fingerprint != fingerprint:
            await error_response(
                InvalidInput(
                    f"Idempotency-Key: {key!r} was used for a different request "
                    f"({stored.method} {stored.path} with another body); use a new key",
                    field="Idempotency-Key",
                )
            )(scope, receive, send)
            return
        deadline = time.monotonic() + WAIT_SECONDS
        while stored.status_code is None and time.monotonic() < deadline:
            await anyio.sleep(0.05)
            found = await anyio.to_thread.run_sync(self.keys.find, principal, key)
            stored = found or stored
        headers = {REPLAYED_HEADER: "true"}
        if stored.status_code is not None and stored.response_body is not None:
            response: Response = Response(
                stored.response_body.encode("utf-8"),
                status_code=stored.status_code,
                media_type="application/json",
                headers=headers,
            )
        else:
            response = await self._rerender(stored, headers)
        await response(scope, receive, send)

    async def _rerender(self, stored: StoredAnswer, headers: dict[str, str]) -> Response:
        render = RENDERERS.get(stored.resource_kind)
        if render is None:
            return error_response(
                DuplicateRequest(
                    f"The request with this Idempotency-Key created {stored.resource_kind} "
                    f"{stored.resource_id}, but its answer was not kept; read it instead",
                    resource_kind=stored.resource_kind,
                    resource_id=stored.resource_id,
                )
            )
        try:
            body = await anyio.to_thread.run_sync(render, self.lab, stored.resource_id)
        except LabledgerError as exc:
            return error_response(exc)
        return Response(
            json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
            status_code=200,
            media_type="application/json",
            headers=headers,
        )
