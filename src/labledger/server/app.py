"""The app factory: ``create_app(settings)`` builds a ready FastAPI app over one database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from sqlalchemy import Engine

from labledger.core.models import OwnershipInfo
from labledger.core.service import ExperimentService
from labledger.server.errors import install_error_handlers
from labledger.server.hardening import install_hardening
from labledger.server.lab import install_lab
from labledger.server.labgateway import install_lab_gateway
from labledger.server.routes import (
    campaigns,
    events,
    experiments,
    imports,
    lab_records,
    meta,
    queue,
    reports,
    results,
    summaries,
    ui,
)
from labledger.settings import Settings
from labledger.storage.engine import create_db_engine
from labledger.storage.schema import ensure_ready
from labledger.storage.sql import SqlStore

__all__ = ["ROUTERS", "create_app"]

#: routers mounted by every app, in order
ROUTERS: list[APIRouter] = [meta.router, experiments.router, experiments.trash, campaigns.router]
# the web UI and the cross-experiment views its pages use as JSON twins
ROUTERS += [summaries.router, ui.router]
# the queue, results, progress, resources, event log and reports (campaigns issue)
ROUTERS += [queue.router, results.router, events.router, reports.router]
# runs pushed from recorders (labledger push)
ROUTERS += [imports.router]
# the lab record read from the MADSci managers (workflows, data points, resources, events)
ROUTERS += [lab_records.router]

#: hooks that add more to an app (routers, middleware); called with (app, settings)
EXTENSIONS: list[Callable[[FastAPI, Settings], None]] = [
    install_hardening,
    install_lab,
    install_lab_gateway,
]

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
    manager_id = settings.resolved_manager_id()
    store = SqlStore(engine)
    service = ExperimentService(store, default_ownership=OwnershipInfo(manager_id=manager_id))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        engine.dispose()

    app = FastAPI(
        title=settings.manager_name,
        description=DESCRIPTION,
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.store = store
    app.state.service = service
    app.state.manager_id = manager_id
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    for extend in EXTENSIONS:
        extend(app, settings)
    return app
