"""The app factory: ``create_app(settings)`` builds a ready FastAPI app over one database.

The app holds one :class:`~labledger.server.lab.ServerLab` (``app.state.lab``), the only object
routes depend on. Middleware order, outermost first: body size limit, access control, rate
limit, idempotency, strict input. So an oversized body is refused before anything else, the rate
limiter knows the token, an idempotent replay is only given to a client allowed to make the
request, and input no backend can store (NUL, lone surrogates, NaN) is refused before a route
runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine

from labledger.server.errors import install_error_handlers
from labledger.server.idempotency import IdempotencyMiddleware
from labledger.server.lab import ServerLab
from labledger.server.limits import BodyLimitMiddleware, RateLimitMiddleware
from labledger.server.openapi import document_errors
from labledger.server.routes import (
    campaigns,
    docs,
    events,
    experiments,
    imports,
    lab_records,
    meta,
    metrics,
    queue,
    reports,
    results,
    summaries,
    tokens,
    ui,
)
from labledger.server.security import AuthMiddleware
from labledger.server.strict_input import StrictInputMiddleware
from labledger.settings import Settings
from labledger.storage.engine import create_db_engine
from labledger.storage.schema import ensure_ready

__all__ = ["ROUTERS", "create_app"]

#: routers mounted by every app, in order
ROUTERS: list[APIRouter] = [meta.router, experiments.router, experiments.trash, campaigns.router]
# the web UI and the cross-experiment views its pages use as JSON twins
ROUTERS += [summaries.router, ui.router]
# the queue, results, progress, resources, event log and reports
ROUTERS += [queue.router, results.router, events.router, reports.router]
# metric series
ROUTERS += [metrics.router]
# runs pushed from recorders (labledger push), and API tokens
ROUTERS += [imports.router, tokens.router]
# the lab record read from the MADSci managers (workflows, data points, resources, events)
ROUTERS += [lab_records.router]
# /docs and /redoc from assets shipped with a package (no CDN)
ROUTERS += [docs.router]

DESCRIPTION = """\
Record and control experiments. Wire-compatible with the MADSci Experiment Manager 0.8.1
(`POST /experiment`, `GET /experiments?number=`,
`POST /experiment/{id}/end|continue|pause|cancel|fail`, campaigns), with an enforced
lifecycle: an illegal change answers 409 naming both states.

On the wire `status` is what a MADSci 0.8.1 client can parse (planned and queued read as
`unknown`) and `lifecycle_status` is the full state.
"""


def create_app(settings: Settings | None = None, *, engine: Engine | None = None) -> FastAPI:
    """An app over ``settings.database_url``; an empty database is initialised on the way.

    Raises :class:`labledger.errors.SchemaOutdated` when the database needs
    ``labledger db upgrade``.
    """
    settings = settings or Settings()
    url = settings.database_url
    own_engine = engine is None
    engine = engine or create_db_engine(url, synchronous=settings.sqlite_synchronous)
    try:
        ensure_ready(engine, url)
    except BaseException:
        if own_engine:
            engine.dispose()
        raise
    lab = ServerLab(settings, engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with lab.running():
            yield

    app = FastAPI(
        title=settings.manager_name,
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.lab = lab
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    document_errors(app)
    # add_middleware wraps: the last one added is the outermost
    app.add_middleware(StrictInputMiddleware)
    app.add_middleware(IdempotencyMiddleware, lab=lab)
    if settings.rate_limit > 0:
        app.add_middleware(
            RateLimitMiddleware, rate=settings.rate_limit, burst=settings.rate_limit_burst
        )
    app.add_middleware(AuthMiddleware, control=lab.access)
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    return app
