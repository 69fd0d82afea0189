"""Carry an experiment's pause, continue and cancel to its workflows on the Workcell Manager.

The experiment's own change never waits for this: a background task follows the event log after
a cursor (kept with the forwarding cursors, under ``workcell-control:<url>``), and for each status
change that asks for it (paused: pause; paused to in progress: resume; cancelled: cancel) acts on
the experiment's unfinished workflows, then records a ``workflow_control`` event with the outcome
per workflow. While the workcell is unreachable the cursor stays where it is and the change is
tried again (every few seconds), so a pause made while the workcell was down reaches the
workflow once it is back. A workflow that finished meanwhile is left alone. With several server
replicas on one database, one at a time holds the cursor.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio

from labledger.core.labrecord import JsonDict, control_action_for, is_unfinished
from labledger.core.models import Event, EventType
from labledger.core.store import Store
from labledger.errors import LabUnavailable
from labledger.server.labgateway.gateway import LabGateway, status_words

__all__ = ["WorkcellControl"]

log = logging.getLogger("labledger.lab")

POLL_SECONDS = 0.5
BATCH = 100
#: longest wait between tries while the workcell is down (a pause must reach it soon after)
RETRY_MAX_SECONDS = 3.0
CLAIM_SECONDS = 60.0


class _NotYet(Exception):
    """The workflow cannot take the action yet (a resume while its paused step still runs)."""


class WorkcellControl:
    """Follow the event log and carry experiment status changes to the workcell."""

    def __init__(self, store: Store, gateway: LabGateway) -> None:
        self.store = store
        self.gateway = gateway
        base = gateway.urls.workcell or ""
        self.key = f"workcell-control:{base}"[:200]

    async def prime(self) -> None:
        """A workcell configured for the first time gets changes from now on."""
        if await anyio.to_thread.run_sync(self.store.forward_cursors.get, self.key) is None:
            start = await anyio.to_thread.run_sync(self.store.events.last_id)
            await anyio.to_thread.run_sync(
                self.store.forward_cursors.save, self.key, start, 0, None, None
            )

    async def run(self) -> None:
        """Propagate until cancelled."""
        while True:
            try:
                await self.propagate_once()
            except Exception:  # keep going: a database blip must not end the task
                log.exception("carrying experiment changes to the workcell failed unexpectedly")
            await asyncio.sleep(POLL_SECONDS)

    async def propagate_once(self) -> int:
        """Handle the next batch of status changes; returns how many were handled."""
        store = self.store
        cursor = await anyio.to_thread.run_sync(store.forward_cursors.get, self.key)
        if cursor is None:
            await self.prime()
            return 0
        now = datetime.now(UTC)
        if cursor.next_attempt_at is not None and cursor.next_attempt_at > now:
            return 0
        after = cursor.last_event_id
        pending = await anyio.to_thread.run_sync(lambda: store.events.find(after_id=after, limit=1))
        if not pending:
            return 0
        claimed = await anyio.to_thread.run_sync(
            store.forward_cursors.claim, self.key, now, now + timedelta(seconds=CLAIM_SECONDS)
        )
        if not claimed:
            return 0
        held = await anyio.to_thread.run_sync(store.forward_cursors.get, self.key)
        assert held is not None
        events = await anyio.to_thread.run_sync(
            lambda: store.events.find(after_id=held.last_event_id, limit=BATCH)
        )
        last, handled = held.last_event_id, 0
        for ev in events:
            action = (
                control_action_for(ev.from_status, ev.to_status)
                if ev.type is EventType.STATUS_CHANGED and ev.experiment_id
                else None
            )
            if action is not None:
                try:
                    await self._carry(ev, action)
                except (LabUnavailable, _NotYet) as exc:
                    failures = held.failures + 1
                    delay = min(RETRY_MAX_SECONDS, 0.5 * 2.0 ** min(failures, 10))
                    await anyio.to_thread.run_sync(
                        store.forward_cursors.save,
                        self.key,
                        last,
                        failures,
                        str(exc)[:500],
                        datetime.now(UTC) + timedelta(seconds=delay),
                    )
                    if isinstance(exc, LabUnavailable):
                        log.warning("workcell unreachable (%s); retrying in %.1f s", exc, delay)
                    return handled
                handled += 1
            assert ev.event_id is not None
            last = ev.event_id
        await anyio.to_thread.run_sync(store.forward_cursors.save, self.key, last, 0, None, None)
        return handled

    async def _carry(self, ev: Event, action: str) -> None:
        assert ev.experiment_id is not None
        section = await self.gateway.workflows([ev.experiment_id], fresh=True)
        if section.error is not None:
            raise LabUnavailable(section.error, manager="workcell")
        outcomes: dict[str, str] = {}
        for workflow in section.items:
            wid = str(workflow.get("workflow_id"))
            outcome = await self._apply(workflow, action)
            if outcome is not None:
                outcomes[wid] = outcome
        if not outcomes:
            return
        record = Event(
            experiment_id=ev.experiment_id,
            campaign_id=ev.campaign_id,
            type=EventType.WORKFLOW_CONTROL,
            actor=ev.actor,
            data={
                "action": action,
                "because_of_event": ev.event_id,
                "workcell_url": self.gateway.urls.workcell,
                "workflows": outcomes,
            },
        )
        await anyio.to_thread.run_sync(self.store.events.append, [record])

    async def _apply(self, workflow: JsonDict, action: str) -> str | None:
        """Act on one workflow; its outcome, or None when there was nothing to do."""
        wid = str(workflow.get("workflow_id"))
        current = await self.gateway.workflow(wid)  # the listing may be a moment old
        if not is_unfinished(current):
            return f"left alone: already {status_words(current)}"
        status: dict[str, Any] = current.get("status") or {}
        if action == "pause" and status.get("paused"):
            return None
        if action == "resume":
            if not status.get("paused"):
                return None
            if _step_running(current):
                raise _NotYet(f"workflow {wid}: the paused step is still running")
        after = await self.gateway.control(wid, action)
        return f"{action}d: now {after}" if action != "cancel" else f"cancelled: now {after}"


def _step_running(workflow: JsonDict) -> bool:
    status = workflow.get("status") or {}
    steps = workflow.get("steps") or []
    index = status.get("current_step_index") if isinstance(status, dict) else None
    if not isinstance(index, int) or not isinstance(steps, list) or not 0 <= index < len(steps):
        return False
    step = steps[index]
    return isinstance(step, dict) and step.get("status") == "running"
