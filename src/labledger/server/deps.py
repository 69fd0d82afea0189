"""Request dependencies shared by the routers (``Annotated`` aliases).

They do no I/O, so they are ``async``: FastAPI runs a plain ``def`` dependency in the thread
pool, and a hop there per dependency cost more than the rest of a ``GET /experiment/{id}``
(``benchmarks/server.py``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from labledger.core.service import ExperimentService
from labledger.settings import Settings

__all__ = ["Actor", "AppSettings", "Service", "get_actor", "get_service", "get_settings"]

ACTOR_HEADER = "X-Labledger-Actor"


async def get_service(request: Request) -> ExperimentService:
    """The service the app was built with."""
    service: ExperimentService = request.app.state.service
    return service


async def get_settings(request: Request) -> Settings:
    """The settings the app was built with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_actor(request: Request) -> str:
    """Who acts, for the event log: the token's name, a declared actor, or the peer."""
    token_name = getattr(request.state, "token_name", None)
    if token_name:
        return f"token:{token_name}"
    declared = request.headers.get(ACTOR_HEADER)
    if declared:
        return declared[:200]
    host = request.client.host if request.client else "unknown"
    return f"anonymous@{host}"


Service = Annotated[ExperimentService, Depends(get_service)]
AppSettings = Annotated[Settings, Depends(get_settings)]
Actor = Annotated[str, Depends(get_actor)]
