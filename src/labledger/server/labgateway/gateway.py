"""Read an experiment's lab record from the MADSci managers, over HTTP, briefly cached.

Each manager call has a short timeout (``lab_timeout``); the managers are asked in parallel; an
answer is reused for ``lab_cache_seconds``. A manager that does not answer, or answers something
that is not the JSON it should be, makes its section *unreachable* (with the time since when),
never an error of the route: the rest of the record is still shown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from labledger.core.labrecord import JsonDict, LabSection, Manager, SectionState, owned_by
from labledger.errors import LabUnavailable

__all__ = ["LabGateway", "LabUrls"]

log = logging.getLogger("labledger.lab")

#: how many archived workflows are read from the Workcell Manager (newest first)
ARCHIVED_WINDOW = 500


@dataclass(frozen=True)
class LabUrls:
    """Where each manager is (None: not part of this lab)."""

    workcell: str | None = None
    data: str | None = None
    resource: str | None = None
    event: str | None = None

    def of(self, manager: Manager) -> str | None:
        url: str | None = getattr(self, manager.value)
        return url.rstrip("/") if url else None


class _Garbage(Exception):
    """A manager answered, but not with what it should have."""


class LabGateway:
    """The :class:`~labledger.core.labrecord.LabReader` and workflow control over HTTP."""

    def __init__(
        self,
        urls: LabUrls,
        *,
        timeout: float = 1.0,
        cache_seconds: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.urls = urls
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._cache: dict[tuple[Any, ...], tuple[float, datetime, Any]] = {}
        self._inflight: dict[tuple[Any, ...], asyncio.Future[tuple[datetime, Any]]] = {}
        self._down_since: dict[Manager, datetime] = {}

    # ------------------------------------------------------------------ plumbing

    def configured(self, manager: Manager) -> bool:
        return self.urls.of(manager) is not None

    @property
    def any_configured(self) -> bool:
        return any(self.configured(m) for m in Manager)

    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 1.0)),
                transport=self._transport,
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _request(self, manager: Manager, method: str, path: str, **kwargs: Any) -> Any:
        """One call; the decoded JSON. Raises LabUnavailable (and notes since when)."""
        base = self.urls.of(manager)
        if base is None:
            raise LabUnavailable(f"no {manager.value} manager configured", manager=manager.value)
        try:
            response = await self.http().request(method, f"{base}{path}", **kwargs)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            now = datetime.now(UTC)
            since = self._down_since.setdefault(manager, now)
            raise LabUnavailable(
                f"{manager.value} manager at {base}: {type(exc).__name__}: {exc}"[:300],
                manager=manager.value,
                unreachable_since=since.isoformat(),
            ) from exc
        self._down_since.pop(manager, None)
        return body

    async def _cached(
        self, key: tuple[Any, ...], fresh: bool, load: Callable[[], Awaitable[Any]]
    ) -> tuple[datetime, Any]:
        """``load()`` once per ``cache_seconds`` per key (concurrent askers share one call)."""
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and not fresh and now - hit[0] < self.cache_seconds:
            return hit[1], hit[2]
        pending = self._inflight.get(key)
        if pending is not None and not fresh:
            return await asyncio.shield(pending)
        future: asyncio.Future[tuple[datetime, Any]] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await load()
            read_at = datetime.now(UTC)
            self._cache[key] = (time.monotonic(), read_at, value)
            if len(self._cache) > 1000:
                self._cache.pop(next(iter(self._cache)))
            future.set_result((read_at, value))
            return read_at, value
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody shared it
            raise
        finally:
            self._inflight.pop(key, None)

    async def _section(
        self,
        manager: Manager,
        key: tuple[Any, ...],
        load: Callable[[], Awaitable[list[JsonDict]]],
        *,
        fresh: bool = False,
    ) -> LabSection:
        if not self.configured(manager):
            return LabSection(manager, SectionState.ABSENT)
        try:
            read_at, items = await self._cached((manager.value, *key), fresh, load)
        except LabUnavailable as exc:
            return LabSection(
                manager,
                SectionState.UNREACHABLE,
                unreachable_since=self._down_since.get(manager, datetime.now(UTC)),
                error=exc.message,
            )
        except _Garbage as exc:
            since = self._down_since.setdefault(manager, datetime.now(UTC))
            return LabSection(
                manager, SectionState.UNREACHABLE, unreachable_since=since, error=str(exc)
            )
        return LabSection(manager, SectionState.OK, items=items, read_at=read_at)

    # ------------------------------------------------------------------ the record

    async def _all_workflows(self) -> dict[str, JsonDict]:
        """Active and archived workflows by id (one listing, shared by every experiment)."""
        active, archived = await asyncio.gather(
            self._request(Manager.WORKCELL, "GET", "/workflows/active"),
            self._request(
                Manager.WORKCELL, "GET", "/workflows/archived", params={"number": ARCHIVED_WINDOW}
            ),
        )
        out: dict[str, JsonDict] = {}
        for listing in (active, archived):
            if not isinstance(listing, dict):
                raise _Garbage("the workcell's workflow listing is not a JSON object")
            for wid, workflow in listing.items():
                if isinstance(workflow, dict):
                    out.setdefault(str(wid), workflow)
        return out

    async def workflows(self, experiment_ids: Sequence[str], *, fresh: bool = False) -> LabSection:
        ids = list(experiment_ids)

        async def load() -> list[JsonDict]:
            return list((await self._all_workflows()).values())

        section = await self._section(Manager.WORKCELL, ("workflows",), load, fresh=fresh)
        # newest submitted first
        section.items = sorted(
            (w for w in section.items if owned_by(w, ids)),
            key=lambda w: str(w.get("submitted_time") or ""),
            reverse=True,
        )
        return section

    async def workflow(self, workflow_id: str) -> JsonDict:
        """One workflow, read now. Raises LabUnavailable."""
        body = await self._request(Manager.WORKCELL, "GET", f"/workflow/{workflow_id}")
        if not isinstance(body, dict):
            raise LabUnavailable("the workcell's workflow is not a JSON object", manager="workcell")
        return body

    async def _query_map(self, manager: Manager, path: str, selector: JsonDict) -> list[JsonDict]:
        body = await self._request(manager, "POST", path, json=selector)
        if isinstance(body, dict):
            return [v for v in body.values() if isinstance(v, dict)]
        if isinstance(body, list):
            return [v for v in body if isinstance(v, dict)]
        raise _Garbage(f"the {manager.value} manager's answer to {path} is not a JSON object")

    async def datapoints(
        self, experiment_ids: Sequence[str], workflow_ids: Sequence[str]
    ) -> LabSection:
        exp, wfs = sorted(experiment_ids), sorted(workflow_ids)

        async def load() -> list[JsonDict]:
            queries = [
                self._query_map(
                    Manager.DATA,
                    "/datapoints/query",
                    {"ownership_info.experiment_id": {"$in": exp}},
                )
            ]
            if wfs:
                queries.append(
                    self._query_map(
                        Manager.DATA,
                        "/datapoints/query",
                        {"ownership_info.workflow_id": {"$in": wfs}},
                    )
                )
            merged: dict[str, JsonDict] = {}
            for found in await asyncio.gather(*queries):
                for point in found:
                    merged.setdefault(str(point.get("_id") or point.get("datapoint_id")), point)
            return sorted(merged.values(), key=lambda p: str(p.get("data_timestamp") or ""))

        return await self._section(Manager.DATA, ("datapoints", tuple(exp), tuple(wfs)), load)

    async def datapoint_value(self, datapoint_id: str) -> httpx.Response:
        """The Data Manager's answer to ``GET /datapoint/{id}/value`` (a file), streamed.

        The caller closes it. Raises LabUnavailable."""
        base = self.urls.of(Manager.DATA)
        if base is None:
            raise LabUnavailable("no data manager configured", manager="data")
        request = self.http().build_request("GET", f"{base}/datapoint/{datapoint_id}/value")
        try:
            response = await self.http().send(request, stream=True)
        except httpx.HTTPError as exc:
            raise LabUnavailable(f"data manager at {base}: {exc}", manager="data") from exc
        if not response.is_success:
            await response.aclose()
            raise LabUnavailable(
                f"data manager answered {response.status_code} for data point {datapoint_id}",
                manager="data",
            )
        return response

    async def resources(self, experiment_ids: Sequence[str]) -> LabSection:
        exp = sorted(experiment_ids)

        async def load() -> list[JsonDict]:
            found = await asyncio.gather(
                *(
                    self._query_map(
                        Manager.RESOURCE,
                        "/resource/query",
                        {"owner": {"experiment_id": eid}, "multiple": True},
                    )
                    for eid in exp
                )
            )
            return [resource for group in found for resource in group]

        return await self._section(Manager.RESOURCE, ("resources", tuple(exp)), load)

    async def events(
        self, experiment_ids: Sequence[str], workflow_ids: Sequence[str]
    ) -> LabSection:
        exp, wfs = sorted(experiment_ids), sorted(workflow_ids)

        async def load() -> list[JsonDict]:
            queries = [
                self._query_map(
                    Manager.EVENT, "/events/query", {"source.experiment_id": {"$in": exp}}
                )
            ]
            if wfs:
                queries.append(
                    self._query_map(
                        Manager.EVENT, "/events/query", {"event_data.workflow_id": {"$in": wfs}}
                    )
                )
            merged: dict[str, JsonDict] = {}
            for found in await asyncio.gather(*queries):
                for event in found:
                    merged.setdefault(str(event.get("_id") or event.get("event_id")), event)
            return sorted(merged.values(), key=lambda e: str(e.get("event_timestamp") or ""))

        return await self._section(Manager.EVENT, ("events", tuple(exp), tuple(wfs)), load)

    # ------------------------------------------------------------------ control

    async def control(self, workflow_id: str, action: str) -> str:
        """POST /workflow/{id}/{action}; the workflow's status after it, in a few words."""
        body = await self._request(Manager.WORKCELL, "POST", f"/workflow/{workflow_id}/{action}")
        return status_words(body)


def status_words(workflow: Any) -> str:
    """A workflow's status as a word: paused, cancelled, completed, running ..."""
    if not isinstance(workflow, dict) or not isinstance(workflow.get("status"), dict):
        return "unknown"
    status = workflow["status"]
    for word in ("cancelled", "failed", "completed", "paused", "running", "queued"):
        if status.get(word):
            return word
    return str(status.get("description") or "active")
