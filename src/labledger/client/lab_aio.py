"""Campaign, queue, result, milestone, resource, event and report methods of the client.

The sync methods are generated from the async ones (``lab_aio.py``) by ``scripts/unasync.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from labledger.client.calls import Call, Upload
from labledger.client.files import DIGEST_HEADER, DownloadCheck, file_digest, guess_type
from labledger.client.labcalls import CampaignSpecLike, lab_calls
from labledger.client.sse import aparse_lines
from labledger.client.wire import decode_error, unreachable
from labledger.core.models import Event, Experiment, ExperimentalCampaign
from labledger.core.records import ErrorInfo, Milestone, ResourceUse, ResourceUseCreate, Result

__all__ = ["AsyncLabMethods"]

T = TypeVar("T")


class AsyncLabMethods:
    """Mixed into :class:`labledger.client.AsyncExperimentClient`."""

    url: str

    if TYPE_CHECKING:
        _http: httpx.AsyncClient

        async def _run(self, call: Call[T]) -> T: ...

        async def flush_metrics(self, timeout: float | None = 30.0) -> None: ...

    # ------------------------------------------------------------------ campaigns

    async def create_campaign(self, spec: CampaignSpecLike) -> ExperimentalCampaign:
        """Create a campaign (and its experiments) from a spec, a mapping or a
        ``*.campaign.yaml`` path."""
        return await self._run(lab_calls.create_campaign(spec))

    async def pause_campaign(self, campaign_id: str) -> ExperimentalCampaign:
        """Pause a campaign: its running experiments pause, its queue is held."""
        return await self._run(lab_calls.campaign_action(campaign_id, "pause"))

    async def resume_campaign(self, campaign_id: str) -> ExperimentalCampaign:
        """Resume a paused campaign."""
        return await self._run(lab_calls.campaign_action(campaign_id, "resume"))

    async def cancel_campaign(self, campaign_id: str) -> ExperimentalCampaign:
        """Cancel a campaign and every unfinished experiment of it."""
        return await self._run(lab_calls.campaign_action(campaign_id, "cancel"))

    async def campaign_progress(self, campaign_id: str) -> dict[str, Any]:
        """Counts by status, finished, success rate, progress."""
        return await self._run(lab_calls.campaign_progress(campaign_id))

    async def campaign_results(self, campaign_id: str) -> dict[str, Any]:
        """The campaign's results table (parameters and results per experiment)."""
        return await self._run(lab_calls.campaign_results(campaign_id))

    # ------------------------------------------------------------------ queue

    async def claim(
        self, worker_id: str, *, campaign_id: str | None = None, lease_seconds: float | None = None
    ) -> Experiment | None:
        """Claim the next queued experiment (None when nothing is claimable)."""
        return await self._run(lab_calls.claim(worker_id, campaign_id, lease_seconds))

    async def heartbeat(
        self, experiment_id: str, worker_id: str, *, lease_seconds: float | None = None
    ) -> Experiment:
        """Renew the lease; raises ``LeaseLost`` when the worker no longer holds it."""
        return await self._run(lab_calls.heartbeat(experiment_id, worker_id, lease_seconds))

    async def finish_experiment(
        self,
        experiment_id: str,
        status: str = "completed",
        *,
        worker_id: str | None = None,
        error: ErrorInfo | Mapping[str, Any] | None = None,
        reason: str | None = None,
    ) -> Experiment:
        """Record the outcome (a failure with its error and traceback)."""
        await self.flush_metrics()
        return await self._run(
            lab_calls.finish(experiment_id, status, worker_id=worker_id, error=error, reason=reason)
        )

    async def release_experiment(
        self, experiment_id: str, worker_id: str, reason: str | None = None
    ) -> Experiment:
        """Give a claimed experiment back to the queue."""
        return await self._run(lab_calls.release(experiment_id, worker_id, reason))

    async def get_queue(self, campaign_id: str | None = None) -> dict[str, Any]:
        """What is queued and what is running (with worker and lease)."""
        return await self._run(lab_calls.get_queue(campaign_id))

    # ------------------------------------------------------------------ results

    async def add_results(
        self, experiment_id: str, values: Mapping[str, Any], *, worker_id: str | None = None
    ) -> list[Result]:
        """Attach named values; a name given again replaces its value. A worker passes its
        ``worker_id`` and gets ``LeaseLost`` if it no longer holds the experiment."""
        return await self._run(lab_calls.add_results(experiment_id, values, worker_id))

    async def add_result(self, experiment_id: str, name: str, value: Any) -> Result:
        """Attach one named value."""
        results = await self.add_results(experiment_id, {name: value})
        return results[0]

    async def get_results(self, experiment_id: str) -> list[Result]:
        """An experiment's results."""
        return await self._run(lab_calls.get_results(experiment_id))

    async def get_result(self, experiment_id: str, name: str) -> Result:
        """One named result."""
        return await self._run(lab_calls.get_result(experiment_id, name))

    async def upload_file(
        self,
        experiment_id: str,
        name: str,
        path: str | Path,
        *,
        media_type: str | None = None,
        worker_id: str | None = None,
    ) -> Result:
        """Upload a file result, streamed; the server checks it against its BLAKE3 digest.

        A worker gives its ``worker_id`` and gets ``LeaseLost`` if it no longer holds the
        experiment."""
        path = Path(path)
        digest = await asyncio.to_thread(file_digest, path)
        upload = Upload(path, media_type or guess_type(path), digest, worker_id)
        return await self._run(lab_calls.upload_file(experiment_id, name, upload))

    async def download_file(self, experiment_id: str, name: str, dest: str | Path) -> str:
        """Download a file result to ``dest``, checking its digest; returns the digest."""
        path = f"experiment/{experiment_id}/files/{name}"
        try:
            async with self._http.stream("GET", path) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise decode_error(response)
                check = DownloadCheck(Path(dest), response.headers.get(DIGEST_HEADER))
                try:
                    async for chunk in response.aiter_bytes():
                        check.write(chunk)
                except BaseException:
                    check.abort()
                    raise
        except httpx.TransportError as exc:
            raise unreachable(self.url, exc) from exc
        return check.commit()

    # ------------------------------------------------------------------ progress, resources

    async def set_progress(
        self, experiment_id: str, progress: float, message: str | None = None
    ) -> Experiment:
        """Record how far the experiment has got (0 to 1)."""
        return await self._run(lab_calls.set_progress(experiment_id, progress, message))

    async def add_milestone(
        self,
        experiment_id: str,
        name: str,
        data: Mapping[str, Any] | None = None,
        *,
        progress: float | None = None,
        worker_id: str | None = None,
    ) -> Milestone:
        """Record a checkpoint with the data to resume from (a worker gives its ``worker_id``
        and gets ``LeaseLost`` if it no longer holds the experiment)."""
        return await self._run(
            lab_calls.add_milestone(experiment_id, name, data, progress, worker_id)
        )

    async def get_milestones(self, experiment_id: str) -> list[Milestone]:
        """An experiment's milestones, oldest first."""
        return await self._run(lab_calls.get_milestones(experiment_id))

    async def last_milestone(self, experiment_id: str) -> Milestone | None:
        """The checkpoint to resume from (None before the first)."""
        found = await self.get_milestones(experiment_id)
        return found[-1] if found else None

    async def add_resources(
        self, experiment_id: str, uses: Sequence[ResourceUseCreate | Mapping[str, Any]]
    ) -> list[ResourceUse]:
        """Record samples, consumables or instruments the experiment used."""
        return await self._run(lab_calls.add_resources(experiment_id, uses))

    async def experiments_using(self, resource_id: str) -> list[str]:
        """Ids of the experiments that used a resource."""
        return await self._run(lab_calls.experiments_using(resource_id))

    # ------------------------------------------------------------------ events, reports

    async def get_events(
        self,
        after: int = 0,
        *,
        experiment_id: str | None = None,
        campaign_id: str | None = None,
        limit: int = 1000,
    ) -> list[Event]:
        """The event log after an event id, optionally of one experiment or campaign."""
        return await self._run(
            lab_calls.get_events(
                after, experiment_id=experiment_id, campaign_id=campaign_id, limit=limit
            )
        )

    async def follow_events(
        self,
        *,
        experiment_id: str | None = None,
        campaign_id: str | None = None,
        after: int | None = None,
        reconnect_delay: float = 1.0,
    ) -> AsyncIterator[Event]:
        """Follow the event log live (SSE), reconnecting after the last event seen."""
        last = after
        params: dict[str, Any] = {}
        if experiment_id:
            params["experiment_id"] = experiment_id
        if campaign_id:
            params["campaign_id"] = campaign_id
        while True:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            try:
                async with self._http.stream(
                    "GET",
                    "events/stream",
                    params=params,
                    headers=headers,
                    timeout=httpx.Timeout(10.0, read=60.0),
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        raise decode_error(response)
                    async for message in aparse_lines(response.aiter_lines()):
                        if message.event == "ready" and message.id:
                            last = int(message.id)  # where the server started
                            continue
                        if message.event == "ping" or not message.data:
                            continue
                        event = Event.model_validate(json.loads(message.data))
                        last = event.event_id
                        yield event
            except httpx.TransportError:
                await asyncio.sleep(reconnect_delay)

    async def experiment_report(self, experiment_id: str, fmt: str = "json") -> Any:
        """An experiment summary: a dict (json) or the Markdown/HTML text."""
        return await self._report("experiment", experiment_id, fmt)

    async def campaign_report(self, campaign_id: str, fmt: str = "json") -> Any:
        """A campaign report: a dict (json) or the Markdown/HTML text."""
        return await self._report("campaign", campaign_id, fmt)

    async def _report(self, kind: str, entity_id: str, fmt: str) -> Any:
        return await self._run(lab_calls.report(kind, entity_id, fmt))
