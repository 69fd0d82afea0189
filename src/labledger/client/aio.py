"""The asynchronous client: ``AsyncExperimentClient``, with the MADSci 0.8.1 method names.

The sync client is generated from the async one (``aio.py``) by ``scripts/unasync.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from time import monotonic
from types import TracebackType
from typing import Any, TypeVar

import httpx

from labledger.client.calls import Call, DesignLike, calls, status_value
from labledger.client.lab_aio import AsyncLabMethods
from labledger.client.metrics import AsyncMetricMethods
from labledger.client.wire import (
    RetryPolicy,
    async_chunks,
    base_url,
    headers_for,
    parse_response,
    request_body,
    unreachable,
)
from labledger.core.lifecycle import ExperimentStatus
from labledger.core.models import Event, Experiment, ExperimentalCampaign

__all__ = ["AsyncExperimentClient"]

T = TypeVar("T")


class AsyncExperimentClient(AsyncLabMethods, AsyncMetricMethods):
    """A client of a labledger (or MADSci-compatible) experiment server.

    Use it as a context manager, or call :meth:`aclose`. ``transport`` is handed to httpx, so
    tests can answer with ``httpx.MockTransport`` (the async client also drives an app
    in-process through ``httpx.ASGITransport(app)``). Errors come back as the classes of
    :mod:`labledger.errors` (``ExperimentNotFound``, ``IllegalTransition`` ...); a server that
    cannot be reached, after the retries of ``retry``, raises ``ServerUnreachable`` naming the
    URL.

    Example::

        async with AsyncExperimentClient("http://127.0.0.1:8002") as client:
            exp = await client.start_experiment({"experiment_name": "titration"}, run_name="r1")
            await client.end_experiment(exp.experiment_id)
    """

    def __init__(
        self,
        experiment_server_url: str | None = None,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> None:
        self.url = base_url(experiment_server_url)
        self.retry = retry or RetryPolicy()
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.AsyncClient(
            base_url=self.url, timeout=timeout, transport=transport, headers=all_headers
        )

    async def __aenter__(self) -> AsyncExperimentClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Send the metric points still buffered, then close the connection pool."""
        try:
            await self._close_metrics()
        finally:
            await self._http.aclose()

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying httpx client (for routes this class does not wrap)."""
        return self._http

    async def _run(self, call: Call[T]) -> T:
        headers = headers_for(call)
        started = monotonic()
        attempt = 0
        while True:
            try:
                with request_body(call, async_chunks) as body:
                    response = await self._http.request(
                        call.method, call.path, params=call.params, headers=headers, **body
                    )
            except httpx.TransportError as exc:
                if self.retry.gives_up(attempt, started) or not self.retry.should_retry_error(
                    call, exc
                ):
                    raise unreachable(self.url, exc) from exc
                await asyncio.sleep(self.retry.delay(attempt))
                attempt += 1
                continue
            if not self.retry.gives_up(attempt, started) and self.retry.should_retry_status(
                call, response.status_code
            ):
                await asyncio.sleep(self.retry.delay(attempt, response))
                attempt += 1
                continue
            result: T = parse_response(call, response)
            return result

    async def start_experiment(
        self,
        experiment_design: DesignLike,
        run_name: str | None = None,
        run_description: str | None = None,
        **options: Any,
    ) -> Experiment:
        """Register and start an experiment (or create it planned/queued with ``status=``)."""
        return await self._run(
            calls.start_experiment(experiment_design, run_name, run_description, **options)
        )

    async def get_experiment(self, experiment_id: str) -> Experiment:
        """One experiment by id."""
        return await self._run(calls.get_experiment(str(experiment_id)))

    async def get_experiments(self, number: int = 10, **filters: Any) -> list[Experiment]:
        """The latest experiments, newest first.

        Filters: status, campaign_id, owner, text, since, until, offset.
        """
        return await self._run(calls.get_experiments(number, **filters))

    async def count_experiments(self, **filters: Any) -> int:
        """How many experiments match the filters."""
        return await self._run(calls.count_experiments(**filters))

    async def end_experiment(
        self, experiment_id: str, status: ExperimentStatus | str | None = None
    ) -> Experiment:
        """End an experiment: completed, or the terminal ``status`` given."""
        await self.flush_metrics()
        return await self._run(calls.action(str(experiment_id), "end", status=status_value(status)))

    async def continue_experiment(self, experiment_id: str) -> Experiment:
        """Continue a paused experiment."""
        return await self._run(calls.action(str(experiment_id), "continue"))

    async def pause_experiment(self, experiment_id: str) -> Experiment:
        """Pause an experiment."""
        return await self._run(calls.action(str(experiment_id), "pause"))

    async def cancel_experiment(self, experiment_id: str) -> Experiment:
        """Cancel an experiment."""
        return await self._run(calls.action(str(experiment_id), "cancel"))

    async def fail_experiment(self, experiment_id: str) -> Experiment:
        """Mark an experiment failed."""
        return await self._run(calls.action(str(experiment_id), "fail"))

    async def start_queued_experiment(self, experiment_id: str) -> Experiment:
        """Start a planned or queued experiment now."""
        return await self._run(calls.action(str(experiment_id), "start"))

    async def queue_experiment(self, experiment_id: str) -> Experiment:
        """Put a planned experiment in the queue."""
        return await self._run(calls.action(str(experiment_id), "queue"))

    async def update_experiment(self, experiment_id: str, **fields: Any) -> Experiment:
        """Replace run_name, run_description, parameters or metadata."""
        return await self._run(calls.update_experiment(str(experiment_id), **fields))

    async def delete_experiment(self, experiment_id: str) -> Experiment:
        """Move an experiment to the trash."""
        return await self._run(calls.delete_experiment(str(experiment_id)))

    async def restore_experiment(self, experiment_id: str) -> Experiment:
        """Take an experiment out of the trash."""
        return await self._run(calls.restore_experiment(str(experiment_id)))

    async def purge_experiment(self, experiment_id: str) -> None:
        """Remove a trashed experiment for good."""
        return await self._run(calls.purge_experiment(str(experiment_id)))

    async def list_trash(self, number: int = 100, offset: int = 0) -> list[Experiment]:
        """Experiments in the trash."""
        return await self._run(calls.list_trash(number, offset))

    async def get_experiment_events(self, experiment_id: str, after: int = 0) -> list[Event]:
        """An experiment's event log, oldest first."""
        return await self._run(calls.experiment_events(str(experiment_id), after))

    async def get_campaign_events(self, campaign_id: str, after: int = 0) -> list[Event]:
        """A campaign's event log, oldest first."""
        return await self._run(calls.campaign_events(campaign_id, after))

    async def register_campaign(
        self, campaign: ExperimentalCampaign | Mapping[str, Any]
    ) -> ExperimentalCampaign:
        """Register a campaign."""
        return await self._run(calls.register_campaign(campaign))

    async def get_campaign(
        self,
        campaign_id: str,
        *,
        experiments_number: int | None = None,
        experiments_offset: int = 0,
    ) -> ExperimentalCampaign:
        """One campaign with its experiment ids: all, or ``experiments_number`` of them from
        ``experiments_offset`` on (``experiment_count`` is the total)."""
        call = calls.get_campaign(campaign_id, experiments_number, experiments_offset)
        return await self._run(call)

    async def get_campaigns(
        self,
        number: int = 100,
        offset: int = 0,
        *,
        experiments_number: int | None = None,
        experiments_offset: int = 0,
    ) -> list[ExperimentalCampaign]:
        """Campaigns, newest first, each with its first 100 experiment ids unless
        ``experiments_number`` says otherwise (``experiment_count`` is the total)."""
        call = calls.get_campaigns(number, offset, experiments_number, experiments_offset)
        return await self._run(call)

    async def health(self) -> Any:
        """The server's health answer."""
        return await self._run(calls.health())

    async def missing_blobs(self, digests: list[str]) -> list[str]:
        """Which of these BLAKE3 digests the server does not hold."""
        return await self._run(calls.missing_blobs(digests))

    async def upload_blob(self, digest: str, path: Path) -> Any:
        """Stream the file at ``path`` to the server under its BLAKE3 ``digest``."""
        return await self._run(calls.upload_blob(digest, path))

    async def import_experiment(
        self, experiment: Experiment, events: list[Event], recorder: Mapping[str, Any]
    ) -> Experiment:
        """Keep a run recorded elsewhere on the server under its own id (idempotent)."""
        return await self._run(calls.import_experiment(experiment, events, recorder))
