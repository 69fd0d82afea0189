"""The MADSci lab around the experiments: reading their lab record, carrying control to it.

:func:`install_lab_gateway` is one of the app's extensions. It puts a
:class:`~labledger.server.labgateway.gateway.LabGateway` on ``app.state.lab_gateway`` (built from
the ``*_server_url`` settings, the missing ones discovered from ``lab_server_url`` at startup) and,
with a Workcell Manager configured, runs the :class:`WorkcellControl` task while the app lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, Request

from labledger.server.labgateway.control import WorkcellControl
from labledger.server.labgateway.gateway import LabGateway, LabUrls
from labledger.settings import Settings

__all__ = ["GatewayDep", "LabGateway", "LabUrls", "install_lab_gateway", "urls_from"]

log = logging.getLogger("labledger.lab")


def _text(url: object) -> str | None:
    return str(url).rstrip("/") if url else None


def urls_from(settings: Settings, context: dict[str, Any] | None = None) -> LabUrls:
    """The managers' URLs: each setting, else what the lab context names."""
    context = context or {}
    return LabUrls(
        workcell=_text(settings.workcell_server_url) or _text(context.get("workcell_server_url")),
        data=_text(settings.data_server_url) or _text(context.get("data_server_url")),
        resource=_text(settings.resource_server_url) or _text(context.get("resource_server_url")),
        event=_text(settings.event_server) or _text(context.get("event_server_url")),
    )


async def discover(lab_url: str, timeout: float) -> dict[str, Any]:
    """The lab context of a MADSci Lab Manager (``GET /context``); {} when it cannot be had."""
    try:
        async with httpx.AsyncClient(timeout=max(timeout, 2.0)) as http:
            response = await http.get(f"{lab_url.rstrip('/')}/context")
            response.raise_for_status()
            body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("cannot read the lab context from %s: %s", lab_url, exc)
        return {}
    return body if isinstance(body, dict) else {}


def install_lab_gateway(app: FastAPI, settings: Settings) -> None:
    """Add the gateway to ``app.state`` and the workcell control task to the app's lifespan."""
    gateway = LabGateway(
        urls_from(settings), timeout=settings.lab_timeout, cache_seconds=settings.lab_cache_seconds
    )
    app.state.lab_gateway = gateway
    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[Any]:
        async with previous(app_) as state:
            if settings.lab_server_url is not None:
                context = await discover(str(settings.lab_server_url), settings.lab_timeout)
                gateway.urls = urls_from(settings, context)
            tasks: list[asyncio.Task[None]] = []
            if gateway.urls.workcell:
                control = WorkcellControl(app_.state.store, gateway)
                app_.state.workcell_control = control
                await control.prime()
                tasks.append(asyncio.create_task(control.run()))
            try:
                yield state
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await gateway.aclose()

    app.router.lifespan_context = lifespan


async def get_gateway(request: Request) -> LabGateway:
    """The app's lab gateway."""
    gateway: LabGateway = request.app.state.lab_gateway
    return gateway


GatewayDep = Annotated[LabGateway, Depends(get_gateway)]
