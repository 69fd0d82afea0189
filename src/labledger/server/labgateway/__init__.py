"""The MADSci lab around the experiments: reading their lab record, carrying control to it.

The app's :class:`~labledger.server.lab.ServerLab` holds one :class:`LabGateway`, built from the
``*_server_url`` settings (:func:`urls_from`); at startup it fills in the missing ones from the
lab context of ``lab_server_url`` (:func:`discover`) and, with a Workcell Manager configured,
runs the :class:`WorkcellControl` task while the app lives.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from labledger.server.labgateway.control import WorkcellControl
from labledger.server.labgateway.gateway import LabGateway, LabUrls
from labledger.settings import Settings

__all__ = ["LabGateway", "LabUrls", "WorkcellControl", "discover", "urls_from"]

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
