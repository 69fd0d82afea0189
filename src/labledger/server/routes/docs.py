"""The API docs pages, ``/docs`` (Swagger UI) and ``/redoc``, with no request leaving the server.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, which leaves them blank on an offline
lab network. These serve the same pages with the scripts and styles shipped by the
``fastapi-offline`` package (its ``static`` folder), mounted at ``/docs-static``.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS", "router"]

#: the Swagger UI and ReDoc bundles of the fastapi-offline package
ASSETS = Path(fastapi_offline.__file__).parent / "static"
_PREFIX = "/docs-static"
#: the pages may load nothing from elsewhere: ReDoc's sidebar would fetch a logo from its CDN
#: (and hides it when that fails); this keeps the browser from trying at all
_ONLY_HERE = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'"
}

router = APIRouter(include_in_schema=False)
router.mount(_PREFIX, StaticFiles(directory=ASSETS), name="docs-static")


@router.get("/docs", response_class=HTMLResponse)
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over this server's OpenAPI document."""
    root = request.scope.get("root_path", "")
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - API docs",
        swagger_js_url=f"{root}{_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{_PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{root}{_PREFIX}/favicon.png",
    )
    page.headers.update(_ONLY_HERE)
    return page


@router.get("/redoc", response_class=HTMLResponse)
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc over this server's OpenAPI document."""
    root = request.scope.get("root_path", "")
    page = get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - API reference",
        redoc_js_url=f"{root}{_PREFIX}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{_PREFIX}/favicon.png",
        with_google_fonts=False,
    )
    page.headers.update(_ONLY_HERE)
    return page
