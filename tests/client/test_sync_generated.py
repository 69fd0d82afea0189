"""The sync client is the async one with ``async`` taken out: generated, and alike in every call."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from labledger.client import AsyncExperimentClient, ExperimentClient

ROOT = Path(__file__).resolve().parents[2]

#: the async name of each sync method whose name differs
RENAMED = {"close": "aclose", "__enter__": "__aenter__", "__exit__": "__aexit__"}
#: plain calls in both clients: they only append to a buffer, in a training loop's hot path
PLAIN_IN_BOTH = {"log_metric", "log_metrics"}


def test_the_generated_sync_modules_are_up_to_date() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "unasync.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _methods(cls: type) -> dict[str, Callable[..., Any]]:
    return {
        name: member
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") or name in {"__init__", *RENAMED, *RENAMED.values()}
    }


def _plain(annotation: str) -> str:
    """An annotation of the async client as the sync one spells it."""
    return re.sub(r"\bAsync(Iterator|ExperimentClient|BaseTransport|Client)\b", r"\1", annotation)


def _shape(function: Callable[..., Any], *, plain: bool = False) -> list[tuple[Any, ...]]:
    signature = inspect.signature(function)
    fix = _plain if plain else str
    shape: list[tuple[Any, ...]] = [
        (p.name, p.kind, fix(str(p.annotation)), repr(p.default))
        for p in signature.parameters.values()
    ]
    shape.append(("return", fix(str(signature.return_annotation))))
    return shape


def test_both_clients_have_the_same_methods() -> None:
    sync = set(_methods(ExperimentClient))
    asynchronous = set(_methods(AsyncExperimentClient))
    assert {RENAMED.get(name, name) for name in sync} == asynchronous


@pytest.mark.parametrize("name", sorted(_methods(ExperimentClient)))
def test_each_method_has_the_same_signature_in_both_clients(name: str) -> None:
    sync = _methods(ExperimentClient)[name]
    twin = _methods(AsyncExperimentClient)[RENAMED.get(name, name)]
    assert _shape(sync) == _shape(twin, plain=True)
    if name in PLAIN_IN_BOTH:
        assert not inspect.iscoroutinefunction(twin), name
    elif name != "__init__":
        assert inspect.iscoroutinefunction(twin) or inspect.isasyncgenfunction(twin), name
        assert not (inspect.iscoroutinefunction(sync) or inspect.isasyncgenfunction(sync)), name


def test_the_parity_check_notices_a_difference() -> None:
    class Drifted(ExperimentClient):
        def get_experiment(self, experiment_id: str, extra: int = 0) -> Any:
            raise NotImplementedError

    assert _shape(Drifted.get_experiment) != _shape(
        AsyncExperimentClient.get_experiment, plain=True
    )
