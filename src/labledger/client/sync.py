# Generated from aio.py by scripts/unasync.py: edit that file, then run the script.
"""The synchronous client: ``ExperimentClient``, with the MADSci 0.8.1 method names.

The sync client is generated from the async one (``aio.py``) by ``scripts/unasync.py``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from time import monotonic
from types import TracebackType
from typing import Any, TypeVar

import httpx

from labledger.client.calls import Call, DesignLike, calls, status_value
from labledger.client.lab_sync import LabMethods
from labledger.client.metrics import MetricMethods
from labledger.client.wire import (
    RetryPolicy,
    base_url,
    headers_for,
    parse_response,
    request_body,
    sync_chunks,
    unreachable,
)
from labledger.core.lifecycle import ExperimentStatus
from labledger.core.models import Event, Experiment, ExperimentalCampaign

__all__ = ["ExperimentClient"]

T = TypeVar("T")


class ExperimentClient(LabMethods, MetricMethods):
    """A client of a labledger (or MADSci-compatible) experiment server.

    Use it as a context manager, or call :meth:`close`. ``transport`` is handed to httpx, so
    tests can answer with ``httpx.MockTransport`` (the async client also drives an app
    in-process through ``httpx.ASGITransport(app)``). Errors come back as the classes of
    :mod:`labledger.errors` (``ExperimentNotFound``, ``IllegalTransition`` ...); a server that
    cannot be reached, after the retries of ``retry``, raises ``ServerUnreachable`` naming the
    URL.

    Example::

        with ExperimentClient("http://127.0.0.1:8002") as client:
            exp = client.start_experiment({"experiment_name": "titration"}, run_name="r1")
            client.end_experiment(exp.experiment_id)
    """

    def __init__(
        self,
        experiment_server_url: str | None = None,
        *,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        token: str | None = None,
    ) -> None:
        self.url = base_url(experiment_server_url)
        self.retry = retry or RetryPolicy()
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, transport=transport, headers=all_headers
        )

    def __enter__(self) -> ExperimentClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Send the metric points still buffered, then close the connection pool."""
        try:
            self._close_metrics()
        finally:
            self._http.close()

    @property
    def http(self) -> httpx.Client:
        """The underlying httpx client (for routes this class does not wrap)."""
        return self._http

    def _run(self, call: Call[T]) -> T:
        headers = headers_for(call)
        started = monotonic()
        attempt = 0
        while True:
            try:
                with request_body(call, sync_chunks) as body:
                    response = self._http.request(
                        call.method, call.path, params=call.params, headers=headers, **body
                    )
            except httpx.TransportError as exc:
                if self.retry.gives_up(attempt, started) or not self.retry.should_retry_error(
                    call, exc
                ):
                    raise unreachable(self.url, exc) from exc
                time.sleep(self.retry.delay(attempt))
                attempt += 1
                continue
            if not self.retry.gives_up(attempt, started) and self.retry.should_retry_status(
                call, response.status_code
            ):
                time.sleep(self.retry.delay(attempt, response))
                attempt += 1
                continue
            result: T = parse_response(call, response)
            return result

    def start_experiment(
        self,
        experiment_design: DesignLike,
        run_name: str | None = None,
        run_description: str | None = None,
        **options: Any,
    ) -> Experiment:
        """Register and start an experiment (or create it planned/queued with ``status=``)."""
        return self._run(
            calls.start_experiment(experiment_design, run_name, run_description, **options)
        )

    def get_experiment(self, experiment_id: str) -> Experiment:
        """One experiment by id."""
        return self._run(calls.get_experiment(str(experiment_id)))

    def get_experiments(self, number: int = 10, **filters: Any) -> list[Experiment]:
        """The latest experiments, newest first.

        Filters: status, campaign_id, owner, text, since, until, offset.
        """
        return self._run(calls.get_experiments(number, **filters))

    def count_experiments(self, **filters: Any) -> int:
        """How many experiments match the filters."""
        return self._run(calls.count_experiments(**filters))

    def end_experiment(
        self, experiment_id: str, status: ExperimentStatus | str | None = None
    ) -> Experiment:
        """End an experiment: completed, or the terminal ``status`` given."""
        self.flush_metrics()
        return self._run(calls.action(str(experiment_id), "end", status=status_value(status)))

    def continue_experiment(self, experiment_id: str) -> Experiment:
        """Continue a paused experiment."""
        return self._run(calls.action(str(experiment_id), "continue"))

    def pause_experiment(self, experiment_id: str) -> Experiment:
        """Pause an experiment."""
        return self._run(calls.action(str(experiment_id), "pause"))

    def cancel_experiment(self, experiment_id: str) -> Experiment:
        """Cancel an experiment."""
        return self._run(calls.action(str(experiment_id), "cancel"))

    def fail_experiment(self, experiment_id: str) -> Experiment:
        """Mark an experiment failed."""
        return self._run(calls.action(str(experiment_id), "fail"))

    def start_queued_experiment(self, experiment_id: str) -> Experiment:
        """Start a planned or queued experiment now."""
        return self._run(calls.action(str(experiment_id), "start"))

    def queue_experiment(self, experiment_id: str) -> Experiment:
        """Put a planned experiment in the queue."""
        return self._run(calls.action(str(experiment_id), "queue"))

    def update_experiment(self, experiment_id: str, **fields: Any) -> Experiment:
        """Replace run_name, run_description, parameters or metadata."""
        return self._run(calls.update_experiment(str(experiment_id), **fields))

    def delete_experiment(self, experiment_id: str) -> Experiment:
        """Move an experiment to the trash."""
        return self._run(calls.delete_experiment(str(experiment_id)))

    def restore_experiment(self, experiment_id: str) -> Experiment:
        """Take an experiment out of the trash."""
        return self._run(calls.restore_experiment(str(experiment_id)))

    def purge_experiment(self, experiment_id: str) -> None:
        """Remove a trashed experiment for good."""
        return self._run(calls.purge_experiment(str(experiment_id)))

    def list_trash(self, number: int = 100, offset: int = 0) -> list[Experiment]:
        """Experiments in the trash."""
        return self._run(calls.list_trash(number, offset))

    def get_experiment_events(self, experiment_id: str, after: int = 0) -> list[Event]:
        """An experiment's event log, oldest first."""
        return self._run(calls.experiment_events(str(experiment_id), after))

    def get_campaign_events(self, campaign_id: str, after: int = 0) -> list[Event]:
        """A campaign's event log, oldest first."""
        return self._run(calls.campaign_events(campaign_id, after))

    def register_campaign(
        self, campaign: ExperimentalCampaign | Mapping[str, Any]
    ) -> ExperimentalCampaign:
        """Register a campaign."""
        return self._run(calls.register_campaign(campaign))

    def get_campaign(
        self,
        campaign_id: str,
        *,
        experiments_number: int | None = None,
        experiments_offset: int = 0,
    ) -> ExperimentalCampaign:
        """One campaign with its experiment ids: all, or ``experiments_number`` of them from
        ``experiments_offset`` on (``experiment_count`` is the total)."""
        call = calls.get_campaign(campaign_id, experiments_number, experiments_offset)
        return self._run(call)

    def get_campaigns(
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
        return self._run(call)

    def health(self) -> Any:
        """The server's health answer."""
        return self._run(calls.health())

    def missing_blobs(self, digests: list[str]) -> list[str]:
        """Which of these BLAKE3 digests the server does not hold."""
        return self._run(calls.missing_blobs(digests))

    def upload_blob(self, digest: str, path: Path) -> Any:
        """Stream the file at ``path`` to the server under its BLAKE3 ``digest``."""
        return self._run(calls.upload_blob(digest, path))

    def import_experiment(
        self, experiment: Experiment, events: list[Event], recorder: Mapping[str, Any]
    ) -> Experiment:
        """Keep a run recorded elsewhere on the server under its own id (idempotent)."""
        return self._run(calls.import_experiment(experiment, events, recorder))
