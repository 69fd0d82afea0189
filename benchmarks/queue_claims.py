"""Queue claims per second with 8 workers, and proof that no experiment is claimed twice.

A real ``labledger serve`` on a throwaway PostgreSQL cluster (and, for comparison, on SQLite)
holds N queued experiments. 8 worker threads, each with its own keep-alive connection, call
``POST /queue/claim`` until it answers 204 (queue empty); in the second pass each worker also
reports the outcome (``POST /experiment/{id}/finish``), the full cycle of a real worker.

Proof of no double claim, checked after each pass:
  * the ids the workers got are all different, and there are exactly N of them;
  * in the database every one of the N experiments has exactly one ``claimed`` event, whose
    worker is the worker that got it, and attempts = 1.

This file is not called ``queue.py``: run as a script, its folder comes first on ``sys.path`` and
a ``queue.py`` there would shadow the standard library's ``queue`` module.

    python benchmarks/queue_claims.py            # 5,000 experiments per pass
    python benchmarks/queue_claims.py --quick    # 100
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import has_postgres, heading, labledger_server, machine, postgres, table, workdir
from sqlalchemy import select

from labledger.core.models import Event, Experiment, ExperimentDesign, ExperimentRegistration
from labledger.core.service import ExperimentService
from labledger.storage.engine import create_db_engine
from labledger.storage.schema import ensure_ready
from labledger.storage.sql import SqlStore
from labledger.storage.tables import events, experiments

WORKERS = 8


def seed(url: str, n: int) -> None:
    """N queued experiments, made by the service and stored in one transaction."""
    engine = create_db_engine(url)
    ensure_ready(engine, url)
    store = SqlStore(engine)
    service = ExperimentService(store)
    made: list[Experiment] = []
    created: list[Event] = []

    class Collect:
        """Stands in for the store's insert only, to store every experiment in one go."""

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def insert_experiment(self, experiment: Experiment, events_: list[Event]) -> None:
            made.append(experiment)
            created.extend(events_)

    service.store = Collect()  # type: ignore[assignment]
    for i in range(n):
        service.create_experiment(
            ExperimentRegistration(
                experiment_design=ExperimentDesign(experiment_name="queued work"),
                run_name=f"job {i}",
                status="queued",
                priority=i % 3,
            )
        )
    store.experiments.insert_many(made, created)
    engine.dispose()


def drain(base_url: str, finish: bool) -> tuple[float, dict[str, list[str]], int]:
    """8 workers claim (and finish) until the queue is empty: (seconds, ids per worker, errors)."""
    host, port = base_url.removeprefix("http://").split(":")
    got: dict[str, list[str]] = {f"worker-{i}": [] for i in range(WORKERS)}
    errors = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(WORKERS + 1)
    headers = {"Content-Type": "application/json"}

    def worker(name: str) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        # A lease longer than the run: a claim whose lease ran out would rightly be requeued and
        # claimed again, which is the queue working, not a double claim.
        claim_body = json.dumps({"worker_id": name, "lease_seconds": 3600}).encode()
        finish_body = json.dumps({"worker_id": name, "status": "completed"}).encode()
        barrier.wait()
        while True:
            conn.request("POST", "/queue/claim", body=claim_body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status == 204:
                break
            if resp.status != 200:
                with lock:
                    errors[0] += 1
                continue
            exp_id = json.loads(data)["_id"]
            got[name].append(exp_id)
            if finish:
                conn.request(
                    "POST", f"/experiment/{exp_id}/finish", body=finish_body, headers=headers
                )
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    with lock:
                        errors[0] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(name,)) for name in got]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - started, got, errors[0]


def check(url: str, got: dict[str, list[str]], n: int) -> list[str]:
    """Problems found (empty when every experiment was claimed exactly once)."""
    problems: list[str] = []
    all_ids = [i for ids in got.values() for i in ids]
    twice = [i for i, c in Counter(all_ids).items() if c > 1]
    if twice:
        problems.append(f"{len(twice)} experiments handed to two workers, e.g. {twice[:3]}")
    if len(set(all_ids)) != n:
        problems.append(f"{len(set(all_ids))} distinct claims for {n} queued experiments")
    holder = {i: w for w, ids in got.items() for i in ids}
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            claimed = conn.execute(
                select(events.c.experiment_id, events.c.data).where(events.c.type == "claimed")
            ).all()
            attempts = dict(conn.execute(select(experiments.c.id, experiments.c.attempts)).all())
    finally:
        engine.dispose()
    per_experiment = Counter(exp_id for exp_id, _ in claimed)
    if len(per_experiment) != n:
        problems.append(f"{len(per_experiment)} experiments have claimed events, expected {n}")
    for exp_id, data in claimed:
        if per_experiment[exp_id] != 1:
            problems.append(f"{exp_id} has {per_experiment[exp_id]} claimed events")
        elif holder.get(exp_id) != data.get("worker_id"):
            problems.append(
                f"{exp_id} claimed by {data.get('worker_id')}, got by {holder.get(exp_id)}"
            )
    if any(a != 1 for a in attempts.values()):
        problems.append("some experiment has attempts != 1")
    return problems


@contextlib.contextmanager
def database(backend: str, tmp: Path, name: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp}/{name}.sqlite3"
        return
    assert _cluster is not None
    yield _cluster.url(_cluster.create_database())


_cluster: Any = None


def run(
    backend: str, n: int, tmp: Path, cycles: tuple[bool, ...]
) -> tuple[list[list[Any]], list[str]]:
    rows: list[list[Any]] = []
    problems: list[str] = []
    for finish in cycles:
        with database(backend, tmp, f"queue-{int(finish)}") as url:
            seed(url, n)
            with labledger_server(url, tmp) as server:
                seconds, got, errors = drain(server.url, finish)
            found = check(url, got, n)
            problems += [f"{backend} {'claim+finish' if finish else 'claim'}: {p}" for p in found]
            per_worker = sorted(len(v) for v in got.values())
            rows.append(
                [
                    backend,
                    "claim + finish" if finish else "claim",
                    n,
                    n / seconds,
                    f"{per_worker[0]}-{per_worker[-1]}",
                    errors,
                    "none" if not found else "FOUND",
                ]
            )
    return rows, problems


def main() -> int:
    global _cluster
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="100 experiments, claims only (for CI)"
    )
    parser.add_argument("--experiments", type=int, default=None)
    parser.add_argument("--backends", default="postgresql,sqlite")
    args = parser.parse_args()
    n = args.experiments or (100 if args.quick else 5000)
    cycles = (False,) if args.quick else (False, True)

    heading(f"Queue: {WORKERS} workers claiming over HTTP")
    print(f"machine: {machine()}")
    rows: list[list[Any]] = []
    problems: list[str] = []
    with workdir("queue") as tmp:
        for backend in args.backends.split(","):
            if backend == "postgresql":
                if not has_postgres():
                    print("postgresql: skipped (PostgreSQL 15 binaries not installed)")
                    continue
                with postgres() as cluster:
                    _cluster = cluster
                    r, p = run(backend, n, tmp, cycles)
            else:
                r, p = run(backend, n, tmp, cycles)
            rows += r
            problems += p
    print()
    print(
        table(
            [
                "backend",
                "cycle",
                "experiments",
                "per s",
                "claims per worker",
                "errors",
                "double claims",
            ],
            rows,
        )
    )
    for problem in problems[:20]:
        print(f"PROBLEM: {problem}")
    if len(problems) > 20:
        print(f"PROBLEM: ... and {len(problems) - 20} more")
    if problems or any(r[5] for r in rows):
        return 1
    print("\nno experiment was claimed twice; every claim is one event naming its worker")
    return 0


if __name__ == "__main__":
    sys.exit(main())
