"""Request dependencies shared by the routers (``Annotated`` aliases).

``LabDep`` is the app's one :class:`~labledger.server.lab.ServerLab`; ``Actor`` and ``Claim``
are what a request brings: who acts (for the event log), and its Idempotency-Key claim (for
use cases that create a record). They do no I/O, so they are ``async``: FastAPI runs a plain
``def`` dependency in the thread pool, and a hop there per dependency cost more than the rest
of a ``GET /experiment/{id}`` (``benchmarks/server.py``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from labledger.core.idempotency import IdempotencyClaim
from labledger.server.lab import ServerLab

__all__ = ["ACTOR_HEADER", "Actor", "Claim", "LabDep", "get_actor", "get_claim", "get_lab"]

ACTOR_HEADER = "X-Labledger-Actor"
#: where the idempotency middleware leaves a keyed request's claim (``request.state``)
CLAIM_STATE = "idempotency_claim"


async def get_lab(request: Request) -> ServerLab:
    """The lab the app was built with."""
    lab: ServerLab = request.app.state.lab
    return lab


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


async def get_claim(request: Request) -> IdempotencyClaim | None:
    """The request's Idempotency-Key claim, when it carries one (see ``idempotency.py``)."""
    claim: IdempotencyClaim | None = getattr(request.state, CLAIM_STATE, None)
    return claim


LabDep = Annotated[ServerLab, Depends(get_lab)]
Actor = Annotated[str, Depends(get_actor)]
Claim = Annotated[IdempotencyClaim | None, Depends(get_claim)]
