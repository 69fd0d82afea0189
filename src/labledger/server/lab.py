"""The campaigns/queue/results part of the app: the :class:`Lab`, the file store, background tasks.

:func:`install_lab` is one of the app's extensions. It builds the :class:`~labledger.core.lab.Lab`
over the app's store and experiment service, opens the content-addressed store of result files,
and runs two background tasks while the app lives: the lease sweeper (every ``sweep_interval``
seconds) and the event forwarder (webhooks and a MADSci Event Manager).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI, Request

from labledger.archive.store import BlobStore
from labledger.core.lab import Lab
from labledger.core.reports import ReportService
from labledger.server.forwarding import Forwarder, targets_from
from labledger.settings import Settings

__all__ = ["LabDep", "install_lab", "result_store"]

log = logging.getLogger("labledger.server")


def result_store(settings: Settings) -> BlobStore:
    """The store of result files (uploads and pushed blobs) of the server of ``settings``.

    The one place that says where that store is: the app, backups and ``labledger db gc``
    all open it here.
    """
    return BlobStore(settings.results_path)


def install_lab(app: FastAPI, settings: Settings) -> None:
    """Add the lab services to ``app.state`` and its background tasks to the app's lifespan."""
    lab = Lab(
        app.state.store,
        experiments=app.state.service,
        lease_seconds=settings.lease_seconds,
        max_attempts=settings.max_attempts,
    )
    blobs = result_store(settings)
    app.state.lab = lab
    app.state.blobs = blobs
    app.state.reports = ReportService(app.state.store)
    forwarder = Forwarder(
        app.state.store,
        targets_from(settings),
        settings.forward_retry_max,
        manager_id=app.state.manager_id,
    )
    app.state.forwarder = forwarder
    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[Any]:
        async with previous(app_) as state:
            tasks = [asyncio.create_task(_sweeper(lab, settings.sweep_interval))]
            if forwarder.targets:
                await forwarder.prime()
                tasks.append(asyncio.create_task(forwarder.run()))
            try:
                yield state
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    app.router.lifespan_context = lifespan


async def _sweeper(lab: Lab, interval: float) -> None:
    """Expire stale leases now and then, so a dead worker's experiment is retried even when
    no other worker is claiming."""
    while True:
        try:
            swept = await anyio.to_thread.run_sync(lab.sweep)
            if swept:
                log.info("lease sweep: %d experiment(s) requeued or failed", swept)
        except Exception:  # keep sweeping: a database blip must not end the task
            log.exception("lease sweep failed")
        await asyncio.sleep(interval)


async def get_lab(request: Request) -> Lab:
    """The lab services of the app."""
    lab: Lab = request.app.state.lab
    return lab


async def get_blobs(request: Request) -> BlobStore:
    """The content-addressed store of result files."""
    blobs: BlobStore = request.app.state.blobs
    return blobs


async def get_reports(request: Request) -> ReportService:
    """The report builder."""
    reports: ReportService = request.app.state.reports
    return reports


LabDep = Annotated[Lab, Depends(get_lab)]
BlobsDep = Annotated[BlobStore, Depends(get_blobs)]
ReportsDep = Annotated[ReportService, Depends(get_reports)]
