"""``/docs`` and ``/redoc`` work with no internet: their assets come from the server itself."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from labledger_fixtures import LiveServer, server_env
from server.chromium import OFFLINE_FLAGS, chromium

WAIT = 30.0

_ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\s*:\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_name_only_assets_of_this_server(sqlite_api: TestClient, page: str) -> None:
    html = sqlite_api.get(page)
    assert html.status_code == 200
    urls = [a or b for a, b in _ASSET.findall(html.text)]
    assert urls, "the page loads no script at all"
    assert all(u.startswith("/") for u in urls), urls
    for url in urls:
        asset = sqlite_api.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000 or url.endswith("openapi.json"), url


@pytest.fixture(scope="module")
def offline_browser() -> Iterator[Any]:
    with chromium(*OFFLINE_FLAGS) as driver:
        yield driver


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("docs-server")
    srv = LiveServer(
        db_url=f"sqlite:///{workdir}/labledger.sqlite3", workdir=workdir, env=server_env()
    )
    srv.start()
    try:
        yield srv.url.rstrip("/")
    finally:
        srv.stop()


def _wait(driver: Any, script: str, message: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.2).until(
        lambda d: d.execute_script(script), message
    )


#: ReDoc's "API docs by Redocly" footer asks for this logo and hides it when it cannot load; the
#: page's Content-Security-Policy blocks it, but Chromium still lists the blocked attempt
_OPTIONAL = {"https://cdn.redoc.ly/redoc/logo-mini.svg"}


def _outside_requests(driver: Any, base: str) -> list[str]:
    names = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name);"
    )
    return [n for n in names if not n.startswith(base) and n not in _OPTIONAL]


@pytest.mark.browser
def test_the_browser_really_is_offline(offline_browser: Any, live: str) -> None:
    offline_browser.get(f"{live}/health")
    outcome = offline_browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css', {mode: 'no-cors'})"
        ".then(() => done('reached'), () => done('blocked'));"
    )
    assert outcome == "blocked"


@pytest.mark.browser
def test_swagger_ui_renders_the_operations_offline(offline_browser: Any, live: str) -> None:
    offline_browser.get(f"{live}/docs")
    count = _wait(
        offline_browser,
        "return document.querySelectorAll('.swagger-ui .opblock').length;",
        "Swagger UI rendered no operation",
    )
    assert count > 20
    paths = offline_browser.execute_script(
        "return [...document.querySelectorAll('.opblock-summary-path')].map(e => e.innerText);"
    )
    assert "/experiment/{experiment_id}" in [p.replace("\u200b", "") for p in paths]
    assert _outside_requests(offline_browser, live) == []


@pytest.mark.browser
def test_redoc_renders_the_reference_offline(offline_browser: Any, live: str) -> None:
    offline_browser.get(f"{live}/redoc")
    _wait(
        offline_browser,
        "return document.body.innerText.includes('Record and control experiments')"
        " && document.querySelectorAll('[data-section-id]').length > 20;",
        "ReDoc rendered no reference",
    )
    assert _outside_requests(offline_browser, live) == []


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_every_reference_of_the_api_description_resolves(sqlite_api: TestClient) -> None:
    spec = sqlite_api.get("/openapi.json").json()
    refs = set(_refs(spec))
    assert refs, "the description references no schema at all"
    for ref in sorted(refs):
        assert ref.startswith("#/"), ref
        node: Any = spec
        for token in ref[2:].split("/"):
            assert isinstance(node, dict) and token in node, f"{ref} does not resolve"
            node = node[token]
