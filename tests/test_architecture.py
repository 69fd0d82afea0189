"""The shape of the package: imports point one way, and every command explains itself.

``errors`` <- ``core`` <- ``settings``/``storage``/``archive``/``runner`` <- ``server``/``cli``;
``client`` needs only ``errors`` and the core's models. The import rules are read from the source
with ``ast`` (every import counts: module level, inside functions, under ``TYPE_CHECKING``), so a
lazy import cannot sneak a dependency or an import cycle past them. ``LAYERS`` is the graph as it
is; new packages and new edges are given a place there on purpose.
"""

from __future__ import annotations

import ast
import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "labledger"

#: part of labledger -> the parts it imports (besides itself). This is the graph as it is, not
#: a ceiling: a new edge is a design decision, made here on purpose.
LAYERS: dict[str, set[str]] = {
    "errors": set(),
    "core": {"errors"},
    "settings": {"errors", "core"},
    "storage": {"errors", "core"},
    "archive": {"errors"},
    "client": {"errors", "core"},  # and of core only the models: see the client test below
    "runner": {"errors", "core", "archive"},
    "server": {"errors", "core", "settings", "storage", "archive"},
    "cli": {"errors", "core", "settings", "storage", "runner", "client", "server"},
    # the package root re-exports the public API lazily
    "__init__": {"errors", "core", "client"},
    # ``python -m labledger`` is the command line
    "__main__": {"cli"},
}

#: third-party and stdlib modules the pure core must not touch (style.md)
CORE_FORBIDDEN = {
    "sqlite3",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "click",
    "typer",
    "subprocess",
}
#: what a client library must not drag into a user's process
CLIENT_FORBIDDEN = {
    "sqlite3",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "fastapi",
    "starlette",
    "uvicorn",
}
#: the core modules that hold the wire models (and what they need); the client may use these only
CLIENT_CORE_ROOTS = {
    "labledger.core.models",
    "labledger.core.lifecycle",
    "labledger.core.records",
    "labledger.core.specs",
}


@dataclass(frozen=True)
class Import:
    importer: str
    target: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(SRC)}:{self.line} imports {self.target}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = all_modules()


def imports_of(name: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield Import(name, target, path, node.lineno)
            for alias in node.names:  # `from labledger.core import models` imports a module
                sub = f"{target}.{alias.name}"
                if sub in MODULES:
                    yield Import(name, sub, path, node.lineno)


ALL_IMPORTS = [imp for name, path in MODULES.items() for imp in imports_of(name, path)]


def part_of(module: str) -> str:
    """``labledger.core.models`` -> ``core``; the package root -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def is_ours(module: str) -> bool:
    return module == "labledger" or module.startswith("labledger.")


def top(module: str) -> str:
    return module.split(".")[0]


# --------------------------------------------------------------------------------------------


def test_the_walk_finds_the_package() -> None:
    assert {"labledger", "labledger.errors", "labledger.core.models"} <= set(MODULES)
    assert any(i.target == "labledger.errors" for i in ALL_IMPORTS)


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {part_of(m) for m in MODULES}
    assert parts - set(LAYERS) == set(), "give the new part a place in LAYERS"


@pytest.mark.parametrize("part", sorted(LAYERS))
def test_imports_point_down_the_layers(part: str) -> None:
    allowed = LAYERS[part] | {part}
    wrong = [
        str(i)
        for i in ALL_IMPORTS
        if part_of(i.importer) == part
        and is_ours(i.target)
        and i.target != "labledger"
        and part_of(i.target) not in allowed
    ]
    assert wrong == [], f"{part} may import only {sorted(allowed)}"


def test_every_allowed_edge_is_used() -> None:
    # LAYERS is the real graph: an edge no import uses any more is taken out of it.
    used = {
        (part_of(i.importer), part_of(i.target))
        for i in ALL_IMPORTS
        if is_ours(i.target) and i.target != "labledger"
    }
    unused = sorted((part, dep) for part, deps in LAYERS.items() for dep in deps)
    assert [edge for edge in unused if edge not in used] == []


def import_graph(imports: list[Import]) -> dict[str, dict[str, Import]]:
    """Module -> the modules of ours it imports (with one import statement that does it)."""
    graph: dict[str, dict[str, Import]] = {}
    for imp in imports:
        if is_ours(imp.target) and imp.target in MODULES and imp.target != imp.importer:
            graph.setdefault(imp.importer, {}).setdefault(imp.target, imp)
    return graph


def cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """The import cycles of ``graph``: one cycle through each strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, {})):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_a_cycle_in(graph, set(component)) for component in components]


def _a_cycle_in(graph: dict[str, dict[str, Import]], component: set[str]) -> list[str]:
    """A path from the component's first module back to itself, inside the component."""
    start = min(component)
    paths = {start: [start]}
    todo = [start]
    while todo:
        node = todo.pop(0)
        for nxt in sorted(graph.get(node, {})):
            if nxt == start:
                return [*paths[node], start]
            if nxt in component and nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                todo.append(nxt)
    raise AssertionError(f"no cycle through {start}")


def test_no_import_cycles() -> None:
    # Module level, inside functions and under TYPE_CHECKING alike: a lazy import hides a cycle
    # from Python, not from the design.
    graph = import_graph(ALL_IMPORTS)
    found = [
        " -> ".join(cycle)
        + "\n    "
        + "\n    ".join(str(graph[a][b]) for a, b in itertools.pairwise(cycle))
        for cycle in cycles(graph)
    ]
    assert found == [], "import cycles:\n" + "\n".join(found)


def test_the_cycle_check_finds_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    session = tmp_path / "session.py"
    session.write_text("from labledger.runner.closing import seal\n")
    closing = tmp_path / "closing.py"
    closing.write_text("def rerun() -> None:\n    from labledger.runner.session import new_run\n")
    imports = [
        *imports_of("labledger.runner.session", session),
        *imports_of("labledger.runner.closing", closing),
    ]
    assert cycles(import_graph(imports)) == [
        ["labledger.runner.closing", "labledger.runner.session", "labledger.runner.closing"]
    ]


def test_core_is_pure() -> None:
    wrong = [
        str(i)
        for i in ALL_IMPORTS
        if part_of(i.importer) == "core" and top(i.target) in CORE_FORBIDDEN
    ]
    assert wrong == []


def test_errors_uses_only_the_standard_library() -> None:
    wrong = [
        str(i)
        for i in ALL_IMPORTS
        if i.importer == "labledger.errors"
        and top(i.target) not in sys.stdlib_module_names
        and top(i.target) != "__future__"
    ]
    assert wrong == []


def _closure(start: set[str]) -> set[str]:
    """Our modules reachable from ``start`` through imports."""
    seen: set[str] = set()
    todo = list(start)
    while todo:
        module = todo.pop()
        if module in seen or module not in MODULES:
            continue
        seen.add(module)
        todo.extend(i.target for i in ALL_IMPORTS if i.importer == module and is_ours(i.target))
    return seen


def test_client_needs_only_errors_and_the_core_models() -> None:
    client = {m for m in MODULES if part_of(m) == "client"}
    if not client:
        pytest.skip("there is no labledger.client package yet")
    allowed_core = _closure(CLIENT_CORE_ROOTS)
    assert all(part_of(m) in {"core", "errors"} for m in allowed_core), sorted(allowed_core)
    allowed = allowed_core | client | {"labledger", "labledger.core", "labledger.errors"}
    direct = [
        str(i)
        for i in ALL_IMPORTS
        if i.importer in client and is_ours(i.target) and i.target not in allowed
    ]
    assert direct == [], f"the client may import only errors and {sorted(allowed_core)}"
    reached = _closure(client)
    assert reached - allowed == set(), "a model module the client uses pulls in more of the core"
    wrong = [
        str(i)
        for i in ALL_IMPORTS
        if i.importer in client | reached and top(i.target) in CLIENT_FORBIDDEN
    ]
    assert wrong == []


def test_the_walk_sees_relative_lazy_and_type_checking_imports(tmp_path: Path) -> None:
    # So that the rules above cannot pass just because the walk missed an import.
    path = tmp_path / "service.py"
    path.write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from ..server import app\n"
        "def f() -> None:\n"
        "    import sqlalchemy.orm\n"
        "    from . import models\n"
    )
    found = {i.target for i in imports_of("labledger.core.service", path)}
    assert {
        "labledger.server",
        "labledger.server.app",
        "sqlalchemy.orm",
        "labledger.core",
        "labledger.core.models",
    } <= found
    assert part_of("labledger.server.app") not in LAYERS["core"]
    assert top("sqlalchemy.orm") in CORE_FORBIDDEN


def _requirement_closure(requirements: list[str]) -> set[str]:
    """The distributions that installing ``requirements`` brings in (names normalized)."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        req, parent_extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": parent_extra}):
            continue
        name = canonicalize_name(req.name)
        extras = sorted(req.extras)
        key = f"{name}[{','.join(extras)}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            sub = requires(name) or []
        except PackageNotFoundError:
            continue  # not installed here; pip would fail loudly on a fresh machine instead
        for extra in ["", *extras]:
            todo.extend((Requirement(r), extra) for r in sub)
    return {key.partition("[")[0] for key in seen}


def test_every_third_party_import_is_installed_by_the_declared_requirements() -> None:
    # A module that is only in a developer's venv by hand breaks a fresh clone (and CI).
    import tomllib
    from importlib.metadata import packages_distributions

    from packaging.utils import canonicalize_name

    project = tomllib.loads((SRC.parent / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra, reqs in project.get("optional-dependencies", {}).items():
        if extra != "dev":  # dev tools are not for the package's own code
            declared += [r for r in reqs if not r.startswith(f"{project['name']}[")]
    installable = _requirement_closure(declared)
    providers = packages_distributions()
    wrong = []
    for imp in ALL_IMPORTS:
        name = top(imp.target)
        if not name or name in sys.stdlib_module_names or name in {"labledger", "__future__"}:
            continue
        dists = {canonicalize_name(d) for d in providers.get(name, [])}
        if not dists & installable:
            wrong.append(f"{imp} (distribution {', '.join(sorted(dists)) or 'unknown'})")
    assert wrong == [], "declare these in pyproject.toml [project] dependencies"


# --------------------------------------------------------------------------------------------
# The command line


def _commands() -> list[tuple[str, ...]]:
    """Every command and subcommand path, as ``labledger --help`` lists them."""
    from labledger.cli.main import cli

    ctx = click.Context(cli, info_name="labledger")
    found: list[tuple[str, ...]] = []

    def walk(group: click.Group, path: tuple[str, ...]) -> None:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None, f"listed command {' '.join((*path, name))} does not load"
            found.append((*path, name))
            if isinstance(command, click.Group):
                walk(command, (*path, name))

    walk(cli, ())
    return found


COMMANDS = _commands()


def _command(path: tuple[str, ...]) -> click.Command:
    from labledger.cli.main import cli

    ctx = click.Context(cli, info_name="labledger")
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        sub = command.get_command(ctx, name)
        assert sub is not None
        command = sub
    return command


def test_labledger_help_lists_every_command() -> None:
    script = Path(sys.executable).with_name("labledger")
    if not script.exists():
        pytest.skip(f"no console script at {script} (pip install -e '.[dev]')")
    proc = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: labledger")
    for path in COMMANDS:
        if len(path) == 1:
            assert f"\n  {path[0]} " in proc.stdout, f"{path[0]} is not listed"


def test_help_imports_no_server_or_database_code() -> None:
    # `labledger --help` must stay fast: command modules defer heavy imports to their bodies.
    code = (
        "import json, sys\n"
        "from labledger.cli.main import cli\n"
        "try:\n"
        "    cli.main(['--help'], prog_name='labledger', standalone_mode=False)\n"
        "finally:\n"
        "    sys.stderr.write(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    loaded = {top(m) for m in json.loads(proc.stderr)}
    heavy = {"fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "psycopg", "httpx"}
    assert loaded & heavy == set()


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    command = _command(path)
    name = " ".join(path)
    # The docstring itself, not the rendered page, whose "Usage: labledger ..." line is automatic.
    assert command.help, f"labledger {name} has no help text"
    assert f"labledger {name}" in command.help, f"the help of labledger {name} shows no example"
    result = CliRunner().invoke(
        _command(()), [*path, "--help"], prog_name="labledger", catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert f"labledger {name}" in result.output
