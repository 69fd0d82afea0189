"""Run one real MADSci 0.8.1 manager (or our simulated instrument) with in-memory backends.

This runs INSIDE the cached venv of the MADSci managers (see ``lab_fixtures.py``), never in
labledger's own venv, and imports nothing of labledger::

    python madsci_lab.py workcell|location|data|event|resource|node --port PORT [--name NAME]

The caller sets the environment each manager reads (``WORKCELL_SERVER_URL``,
``WORKCELL_NODES``, ``LOCATION_SERVER_URL`` ...) and runs it in a scratch working directory.
MongoDB is not needed: the document and cache handlers are the in-memory ones MADSci ships.
"""

import argparse
import contextlib
import os
import time
from pathlib import Path
from typing import Any


def _tolerant_redlock() -> None:
    """MADSci's in-memory lock raises when a thread releases a lock another thread took (two
    workflows sharing a node can fail a step with "cannot release un-acquired lock"); the real
    Redis lock it stands in for does not. Make release by a non-owner a no-op, as Redis does."""
    from madsci.common.local_backends import inmemory_redis

    lock_cls: Any = inmemory_redis.InMemoryRedlock

    def release(self: Any) -> None:
        with contextlib.suppress(RuntimeError):
            self._rlock.release()

    def exit_(self: Any, *args: Any) -> None:
        release(self)

    lock_cls.release = release
    lock_cls.__exit__ = exit_


def run_manager(role: str, port: int) -> None:
    from madsci.common.db_handlers.cache_handler import InMemoryCacheHandler
    from madsci.common.db_handlers.document_storage_handler import InMemoryDocumentStorageHandler

    _tolerant_redlock()
    documents = InMemoryDocumentStorageHandler(database_name=role)
    manager: Any
    if role == "workcell":
        from madsci.workcell_manager.workcell_server import WorkcellManager

        manager = WorkcellManager(
            cache_handler=InMemoryCacheHandler(), document_handler=documents, start_engine=True
        )
    elif role == "location":
        from madsci.location_manager.location_server import LocationManager

        manager = LocationManager(cache_handler=InMemoryCacheHandler(), document_handler=documents)
    elif role == "data":
        from madsci.data_manager.data_server import DataManager

        manager = DataManager(document_handler=documents)
    elif role == "event":
        from madsci.event_manager.event_server import EventManager

        manager = EventManager(document_handler=documents)
    elif role == "resource":
        from madsci.common.db_handlers.postgres_handler import SQLiteHandler
        from madsci.resource_manager.resource_interface import ResourceInterface
        from madsci.resource_manager.resource_server import ResourceManager

        handler = SQLiteHandler(f"sqlite:///{Path.cwd() / 'resources.sqlite3'}")
        manager = ResourceManager(resource_interface=ResourceInterface(postgres_handler=handler))
    else:
        raise SystemExit(f"unknown role {role!r}")
    manager.run_server(host="127.0.0.1", port=port)


def run_node(name: str, port: int) -> None:
    """A simulated instrument: ``sleep(seconds)`` and ``measure(sample)``."""
    from madsci.common.types.node_types import RestNodeConfig
    from madsci.node_module.helpers import action
    from madsci.node_module.rest_node_module import RestNode

    class SimNode(RestNode):  # type: ignore[misc]  # madsci is untyped here
        """An instrument that waits, and measures the absorbance of a sample."""

        # MADSci reads the return annotation at runtime and wants a bare ``dict``
        @action  # type: ignore[untyped-decorator]
        def sleep(self, seconds: float = 1.0) -> dict:  # type: ignore[type-arg]
            """Wait ``seconds``."""
            time.sleep(float(seconds))
            return {"slept": float(seconds)}

        @action  # type: ignore[untyped-decorator]
        def measure(self, sample: str = "A1") -> dict:  # type: ignore[type-arg]
            """Measure a sample: its absorbance is derived from its name, so it is repeatable."""
            absorbance = round((sum(map(ord, sample)) % 97) / 100, 3)
            return {"sample": sample, "absorbance": absorbance}

    config = RestNodeConfig(
        node_url=f"http://127.0.0.1:{port}/",
        node_name=name,
        enable_registry_resolution=False,
        enable_rate_limiting=False,
    )
    SimNode(node_config=config).start_node()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default="sim_node")
    args = parser.parse_args()
    os.environ.setdefault("MADSCI_DISABLE_SENTRY", "1")
    if args.role == "node":
        run_node(args.name, args.port)
    else:
        run_manager(args.role, args.port)


if __name__ == "__main__":
    main()
