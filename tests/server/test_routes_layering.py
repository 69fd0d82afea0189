"""Routes reach the database only through the app's one object (``LabDep``), never storage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import labledger.server.routes as routes_package

ROUTES = sorted(Path(routes_package.__file__).parent.glob("*.py"))


def _imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
    return found


@pytest.mark.parametrize("path", ROUTES, ids=lambda p: p.name)
def test_a_route_module_imports_nothing_from_storage(path: Path) -> None:
    assert [m for m in _imports(path) if m.startswith("labledger.storage")] == []


@pytest.mark.parametrize("path", ROUTES, ids=lambda p: p.name)
def test_a_route_module_does_not_read_app_state(path: Path) -> None:
    # the app's state holds one object, handed to routes by the LabDep dependency
    assert "app.state" not in path.read_text(encoding="utf-8")
