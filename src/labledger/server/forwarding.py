"""Forward the event log to webhooks and to a MADSci Event Manager, retrying from the log.

Forwarding reads the events table after a per-target cursor (kept in ``forward_cursors``) and
POSTs each event in order; the cursor moves only when the target answered 2xx. A failing target
is retried with exponential backoff (up to ``forward_retry_max`` seconds) and holds up nobody:
experiments write their events whatever happens here, and each target has its own cursor, its
own task, connections and timeout, so a target that accepts and never answers delays no other. A
target configured for the first time starts at the end of the log (it gets new events only).
With several server replicas on one database, one at a time forwards to a target: it claims the
target's cursor for the batch. Delivery is at least once (a replica killed between a POST and
saving the cursor sends that event again; MADSci event ids stay the same, so it can dedupe).

Webhooks receive the event as labledger's JSON (as in ``GET /events``). The MADSci Event
Manager receives MADSci's ``Event`` shape at ``POST {event_manager_url}/event``, with an
``event_id`` derived from ours, so a retried delivery carries the same id.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
from ulid import ULID

from labledger.core.models import Event, EventType
from labledger.core.store import Store
from labledger.server.rendering import event_wire
from labledger.settings import Settings

__all__ = ["Forwarder", "Target", "madsci_event", "targets_from"]

log = logging.getLogger("labledger.forwarding")

BATCH = 100
POLL_SECONDS = 0.5
#: how long one replica delivers a batch to a target before it saves the cursor; its claim on
#: the target lasts this plus one POST's timeout, so no other replica sends the same events
CLAIM_SECONDS = 60.0
#: how long one POST to a target may take before it counts as failed
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Target:
    """Where events go: a webhook URL, or a MADSci Event Manager."""

    url: str
    kind: str  # "webhook" | "madsci"

    @property
    def key(self) -> str:
        """The cursor's name."""
        return f"{self.kind}:{self.url}"[:200]


def targets_from(settings: Settings) -> list[Target]:
    """The targets the settings configure."""
    targets = [Target(str(url), "webhook") for url in settings.webhook_urls]
    if settings.event_server is not None:
        base = str(settings.event_server).rstrip("/")
        targets.append(Target(f"{base}/event", "madsci"))
    return targets


_STATUS_EVENT = {
    "completed": "experiment_complete",
    "failed": "experiment_failed",
    "cancelled": "experiment_cancelled",
    "paused": "experiment_pause",
}
_CAMPAIGN_EVENT = {
    "active": "campaign_start",
    "completed": "campaign_complete",
    "cancelled": "campaign_abort",
}


def _madsci_type(ev: Event) -> str:
    if ev.type is EventType.CREATED:
        return "experiment_create"
    if ev.type is EventType.CAMPAIGN_CREATED:
        return "campaign_create"
    if ev.type is EventType.CAMPAIGN_STATUS_CHANGED:
        return _CAMPAIGN_EVENT.get(ev.to_status or "", "log_info")
    if ev.to_status and ev.to_status != ev.from_status:
        if ev.to_status == "in_progress":
            return "experiment_continued" if ev.from_status == "paused" else "experiment_start"
        return _STATUS_EVENT.get(ev.to_status, "log_info")
    return "log_info"


def _stable_ulid(ev: Event, salt: str) -> str:
    digest = hashlib.sha256(f"{salt}:{ev.event_id}".encode()).digest()
    millis = int(ev.at.timestamp() * 1000)
    return str(ULID(millis.to_bytes(6, "big") + digest[:10]))


def madsci_event(ev: Event, manager_id: str | None = None) -> dict[str, Any]:
    """The MADSci ``Event`` JSON of one of our events."""
    source: dict[str, str] = {}
    if manager_id:
        source["manager_id"] = manager_id
    if ev.experiment_id:
        source["experiment_id"] = ev.experiment_id
    if ev.campaign_id:
        source["campaign_id"] = ev.campaign_id
    failed = ev.to_status == "failed"
    return {
        "event_id": _stable_ulid(ev, manager_id or ""),
        "event_type": _madsci_type(ev),
        "log_level": 40 if failed else 20,
        "alert": False,
        "event_timestamp": ev.at.isoformat(),
        "source": source,
        "event_data": {"labledger_event": event_wire(ev)},
    }


class Forwarder:
    """Deliver new events to every target, each at its own pace."""

    def __init__(
        self,
        store: Store,
        targets: list[Target],
        retry_max: float = 300.0,
        *,
        manager_id: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.store = store
        self.targets = targets
        self.retry_max = retry_max
        self.manager_id = manager_id
        self.transport = transport
        self.timeout = timeout

    async def prime(self) -> None:
        """Give every new target a cursor at the end of the log (it gets events from now on)."""
        for target in self.targets:
            if await anyio.to_thread.run_sync(self.store.forward_cursors.get, target.key) is None:
                start = await anyio.to_thread.run_sync(self.store.events.last_id)
                await anyio.to_thread.run_sync(
                    self.store.forward_cursors.save, target.key, start, 0, None, None
                )

    async def run(self) -> None:
        """Forward until cancelled: every target in a task of its own, with its own connection
        pool and timeout, so a slow or hanging target holds up no other target (nor the API)."""
        async with anyio.create_task_group() as tasks:
            for target in self.targets:
                tasks.start_soon(self.follow, target)

    async def follow(self, target: Target) -> None:
        """Deliver to ``target`` until cancelled."""
        async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as http:
            while True:
                try:
                    sent = await self.forward_once(http, target)
                except Exception:  # keep following: a database blip must not end the task
                    log.exception("forwarding to %s failed unexpectedly", target.url)
                    sent = 0
                if sent < BATCH:
                    await asyncio.sleep(POLL_SECONDS)

    async def forward_once(self, http: httpx.AsyncClient, target: Target) -> int:
        """Deliver the next batch to ``target``; returns how many events it accepted."""
        cursor = await anyio.to_thread.run_sync(self.store.forward_cursors.get, target.key)
        if cursor is None:
            start = await anyio.to_thread.run_sync(self.store.events.last_id)
            await anyio.to_thread.run_sync(
                self.store.forward_cursors.save, target.key, start, 0, None, None
            )
            return 0
        now = datetime.now(UTC)
        if cursor.next_attempt_at is not None and cursor.next_attempt_at > now:
            return 0  # backing off, or another replica is forwarding to this target
        after = cursor.last_event_id
        pending = await anyio.to_thread.run_sync(
            lambda: self.store.events.find(after_id=after, limit=1)
        )
        if not pending:
            return 0  # nothing new: no write at all
        claimed = await anyio.to_thread.run_sync(
            self.store.forward_cursors.claim,
            target.key,
            now,
            now + timedelta(seconds=CLAIM_SECONDS + self.timeout),
        )
        if not claimed:
            return 0
        # re-read under the claim: another replica may have moved the cursor meanwhile
        held = await anyio.to_thread.run_sync(self.store.forward_cursors.get, target.key)
        assert held is not None
        cursor = held
        events = await anyio.to_thread.run_sync(
            lambda: self.store.events.find(after_id=held.last_event_id, limit=BATCH)
        )
        sent = 0
        last = cursor.last_event_id
        started = time.monotonic()
        for ev in events:
            if time.monotonic() - started > CLAIM_SECONDS:
                break  # save the cursor (and let go) well before the claim runs out
            body = madsci_event(ev, self.manager_id) if target.kind == "madsci" else event_wire(ev)
            error = await self._post(http, target, body)
            if error is not None:
                failures = cursor.failures + 1
                delay = min(self.retry_max, 2.0 ** min(failures, 20))
                await anyio.to_thread.run_sync(
                    self.store.forward_cursors.save,
                    target.key,
                    last,
                    failures,
                    error,
                    now + timedelta(seconds=delay),
                )
                log.warning(
                    "forwarding event %s to %s failed (%s); retrying in %.0f s",
                    ev.event_id,
                    target.url,
                    error,
                    delay,
                )
                return sent
            assert ev.event_id is not None
            last = ev.event_id
            sent += 1
        # saving the cursor also releases the claim (next_attempt_at back to none)
        await anyio.to_thread.run_sync(
            self.store.forward_cursors.save, target.key, last, 0, None, None
        )
        return sent

    @staticmethod
    async def _post(http: httpx.AsyncClient, target: Target, body: dict[str, Any]) -> str | None:
        try:
            response = await http.post(target.url, json=body)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        if response.is_success:
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"
