"""Install access control, limits and idempotency on an app (an ``EXTENSIONS`` hook).

Middleware order, outermost first: body size limit, access control, rate limit, idempotency,
strict input. So an oversized body is refused before anything else, the rate limiter knows the
token, an idempotent replay is only given to a client allowed to make the request, and input no
backend can store (NUL, lone surrogates, NaN) is refused before a route runs.
"""

from __future__ import annotations

from fastapi import FastAPI

from labledger.server.idempotency import IdempotencyMiddleware
from labledger.server.limits import BodyLimitMiddleware, RateLimitMiddleware
from labledger.server.openapi import document_errors
from labledger.server.routes import tokens
from labledger.server.security import AccessControl, AuthMiddleware
from labledger.server.strict_input import StrictInputMiddleware
from labledger.settings import Settings
from labledger.storage.access_sql import IdempotencyStore, TokenStore

__all__ = ["install_hardening"]


def install_hardening(app: FastAPI, settings: Settings) -> None:
    """Add the token routes and the middleware of this module's docstring to ``app``."""
    engine = app.state.engine
    token_store = TokenStore(engine)
    control = AccessControl(settings, token_store)
    app.state.token_store = token_store
    app.state.access_control = control
    app.include_router(tokens.router)
    document_errors(app)
    # add_middleware wraps: the last one added is the outermost
    app.add_middleware(StrictInputMiddleware)
    app.add_middleware(IdempotencyMiddleware, fastapi_app=app, store=IdempotencyStore(engine))
    if settings.rate_limit > 0:
        app.add_middleware(
            RateLimitMiddleware, rate=settings.rate_limit, burst=settings.rate_limit_burst
        )
    app.add_middleware(AuthMiddleware, control=control)
    app.add_middleware(BodyLimitMiddleware, settings=settings)
