"""List latency as the store grows: 10,000, 100,000 and 1,000,000 experiments.

For each backend (SQLite, and PostgreSQL when its binaries are installed) one database grows in
steps; after each step the same lists are timed two ways:

    store   SqlStore.experiments.find(...) called directly (no HTTP)
    http    GET /experiments?... answered by a real ``labledger serve`` over loopback
            (one keep-alive client, requests one after another)

Lists: the latest 10 (MADSci's ``GET /experiments?number=10``), and the latest 10 filtered by
one status, by two statuses, by campaign, by owner, by a text that about 1 in 20 experiments
contains, by a text one experiment contains (``#`` and its number) and by a text none does.
Then the count without filters (``GET /experiments/count``), the campaign list (``GET
/campaigns``: 100 campaigns, the first one of 10,000 experiments, 100 ids each) and that
campaign with all its 10,000 ids (``GET /campaign/{id}``). Each figure is printed with its
ratio to the figure at the smallest size, and the load average is printed beside each size.
Each HTTP figure comes with the server's CPU time (user + system) per request, which other work
on the machine disturbs less than latency does.

``--reference-src`` compares two versions of the code on the same database in the same
minutes: a second server runs the code of that ``src`` folder (``PYTHONPATH``), and each HTTP
figure is timed on both servers alternately, request by request (``via`` ``http ref`` is the
reference's; ``x ref`` divides this code's figure by the reference's).

Experiments are bulk-loaded through the schema's own tables (``executemany`` in transactions of
20,000 rows, so the database's triggers keep the text index and the live count as they do for
the app's own inserts): realistic rows (design JSON, parameters, ownership), statuses mostly
terminal, the first 10,000 experiments in one campaign and then 1,000 per campaign (each with
its campaign row; the big one is the newest campaign), 50 owners, 1% in the trash. Events are
not loaded (lists never read them). PostgreSQL is VACUUM ANALYZEd (again while that marks more pages
all-visible) and checkpointed after each load, as autovacuum and the checkpointer would do
before long.

    python benchmarks/scale.py                 # 10k, 100k, 1M on SQLite and PostgreSQL
    python benchmarks/scale.py --quick         # 1k and 3k
    python benchmarks/scale.py --sizes 10000,100000 --backends sqlite
    python benchmarks/scale.py --sizes 100000 --reference-src /path/to/main/src   # A/B
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import random
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import (
    Server,
    cpu_seconds,
    has_postgres,
    heading,
    labledger_server,
    loadavg,
    machine,
    percentile,
    postgres,
    table,
    workdir,
)

from labledger.core.lifecycle import ExperimentStatus
from labledger.core.models import ExperimentQuery
from labledger.storage.engine import create_db_engine, write_transaction
from labledger.storage.schema import ensure_ready
from labledger.storage.sql import SqlStore
from labledger.storage.tables import campaigns, experiments

STATUSES = (
    ["completed"] * 70
    + ["failed"] * 10
    + ["cancelled"] * 5
    + ["in_progress"] * 5
    + ["paused"] * 3
    + ["queued"] * 4
    + ["planned"] * 3
)
DESIGNS = [
    "xrd-scan",
    "anneal-700",
    "spin-coat",
    "uv-vis",
    "titration",
    "pxrd-fit",
    "ink-print",
    "furnace-ramp",
    "hplc-run",
    "cv-sweep",
    "sem-image",
    "ball-mill",
    "dsc-heat",
    "tga-burn",
    "ph-probe",
    "raman-map",
    "sputter",
    "drop-cast",
    "electro-dep",
    "flow-syn",
]
TEXT = "anneal"  # in one design name of 20
ABSENT = "qwzx"  # in no experiment
PER_CAMPAIGN = 1_000
BIG_CAMPAIGN = 10_000  # the first campaign's experiments
BATCH = 20_000
_B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_at(ms: int, rnd: random.Random) -> str:
    """A ULID string for millisecond timestamp ``ms`` (time-ordered, like the app's)."""
    value = (ms << 80) | rnd.getrandbits(80)
    return "".join(_B32[(value >> (5 * i)) & 31] for i in range(25, -1, -1))


@dataclass
class Dataset:
    """What was loaded so far, and ids the filters pick."""

    size: int = 0
    owners: list[str] | None = None
    campaigns: list[str] | None = None
    campaign_rows: int = 0


BASE = datetime(2024, 1, 1, tzinfo=UTC)


def load(store: SqlStore, data: Dataset, target: int, rnd: random.Random) -> float:
    """Add experiments until ``target`` are stored; returns rows/s.

    Rows go in through the driver in batches of 20,000 per transaction (SQLite ``executemany``,
    PostgreSQL ``COPY``), in the storage form SQLAlchemy writes (``check_round_trip`` reads them
    back through the store).
    """
    if data.owners is None:
        data.owners = [ulid_at(1_700_000_000_000 + i, rnd) for i in range(50)]
        data.campaigns = []
    assert data.campaigns is not None
    sqlite = store.engine.dialect.name == "sqlite"
    columns = [c.name for c in experiments.columns]
    started = time.perf_counter()
    added = target - data.size
    while data.size < target:
        rows = []
        for i in range(data.size, min(target, data.size + BATCH)):
            if i == 0 or (i >= BIG_CAMPAIGN and i % PER_CAMPAIGN == 0):
                data.campaigns.append(ulid_at(1_700_000_000_000 + i, rnd))
            row = _row(i, data, rnd, sqlite)
            rows.append(tuple(row.get(c) for c in columns))
        with write_transaction(store.engine) as conn:
            dbapi = conn.connection.driver_connection
            assert dbapi is not None
            if sqlite:
                marks = ", ".join("?" * len(columns))
                dbapi.executemany(
                    f"INSERT INTO experiments ({', '.join(columns)}) VALUES ({marks})", rows
                )
            else:
                with (
                    dbapi.cursor() as cur,
                    cur.copy(f"COPY experiments ({', '.join(columns)}) FROM STDIN") as copy,
                ):
                    for row in rows:
                        copy.write_row(row)
        data.size += len(rows)
    add_campaign_rows(store, data)
    return added / (time.perf_counter() - started)


def add_campaign_rows(store: SqlStore, data: Dataset) -> None:
    """A campaign row for each campaign id not stored yet; the big one is the newest."""
    assert data.campaigns is not None
    new = data.campaigns[data.campaign_rows :]
    rows = [
        {
            "id": cid,
            "name": f"campaign {data.campaign_rows + n}",
            "description": None,
            "status": "active",
            "owner": None,
            "ownership": {},
            "parameters": {},
            "metadata": {},
            "declared_experiment_ids": [],
            "version": 1,
            "created_at": (
                BASE + timedelta(days=3650)
                if data.campaign_rows + n == 0
                else BASE
                + timedelta(seconds=30 * (BIG_CAMPAIGN + (data.campaign_rows + n) * PER_CAMPAIGN))
            ),
            "updated_at": BASE,
            "ended_at": None,
        }
        for n, cid in enumerate(new)
    ]
    if rows:
        with write_transaction(store.engine) as conn:
            conn.execute(campaigns.insert(), rows)
    data.campaign_rows = len(data.campaigns)


_DESIGN_JSON = {
    d: json.dumps(
        {
            "experiment_name": d,
            "experiment_description": f"{d} protocol v3",
            "resource_conditions": [],
            "ownership_info": {},
            "parameters": {"temperature_c": 25},
        }
    )
    for d in DESIGNS
}
_NAIVE_BASE = BASE.replace(tzinfo=None)


def _row(i: int, data: Dataset, rnd: random.Random, sqlite: bool) -> dict[str, Any]:
    """Experiment number ``i`` in storage form (SQLite keeps naive UTC text, as SQLAlchemy does)."""
    assert data.campaigns and data.owners
    status = STATUSES[rnd.randrange(len(STATUSES))]
    design = DESIGNS[rnd.randrange(len(DESIGNS))]
    terminal = status in _TERMINAL
    base = _NAIVE_BASE if sqlite else BASE
    created = base + timedelta(seconds=30 * i)
    ended = created + timedelta(minutes=20) if terminal else None
    deleted = created + timedelta(days=1) if i % 100 == 99 else None
    times = {
        "created_at": created,
        "updated_at": ended or created,
        "started_at": None if status in ("planned", "queued") else created,
        "ended_at": ended,
        "deleted_at": deleted,
    }
    if sqlite:
        times = {k: v and v.isoformat(" ", "microseconds") for k, v in times.items()}
    return {
        "id": ulid_at(1_704_067_200_000 + 30_000 * i, rnd),
        "status": status,
        "name": design,
        "run_name": f"{design} #{i}",
        "run_description": f"sample S{i % 977:03d} on line {i % 7}",
        "campaign_id": data.campaigns[-1],
        "owner": data.owners[rnd.randrange(len(data.owners))],
        "design": _DESIGN_JSON[design],
        "ownership": "{}",
        "parameters": f'{{"temperature_c": {20 + i % 600}, "sample": "S{i % 977:03d}"}}',
        "metadata": "{}",
        "priority": 0,
        "progress": 1.0 if terminal else None,
        "attempts": 0,
        "version": 3,
        **times,
    }


def check_round_trip(store: SqlStore, data: Dataset) -> None:
    """The newest stored experiment reads back as the loader meant it (storage form is right)."""
    newest = store.experiments.find(ExperimentQuery(limit=1, deleted=False))[0]
    index = int(newest.run_name.rsplit("#", 1)[1]) if newest.run_name else -1
    expected = BASE + timedelta(seconds=30 * index)
    if newest.created_at != expected or newest.experiment_design is None:
        raise RuntimeError(f"bulk-loaded rows do not read back: {newest!r}")


_TERMINAL = {"completed", "failed", "cancelled"}


def queries(data: Dataset) -> dict[str, dict[str, Any]]:
    """Name -> list filters (as ExperimentQuery fields)."""
    assert data.campaigns and data.owners
    return {
        "latest 10": {},
        "status=failed": {"statuses": [ExperimentStatus.FAILED]},
        "status=in_progress,paused": {
            "statuses": [ExperimentStatus.IN_PROGRESS, ExperimentStatus.PAUSED]
        },
        "campaign": {"campaign_id": data.campaigns[len(data.campaigns) // 2]},
        "owner": {"owner": data.owners[7]},
        f"text={TEXT}": {"text": TEXT},
        "text=#N (one run)": {"text": f"#{data.size * 3 // 4 + 1}"},
        f"text={ABSENT} (none)": {"text": ABSENT},
    }


def other_cases(store: SqlStore, data: Dataset) -> dict[str, tuple[Callable[[], Any], str]]:
    """Name -> (the store call, the HTTP path) of the count and the campaign routes."""
    assert data.campaigns
    big = data.campaigns[0]
    return {
        "count, no filter": (store.experiments.count, "/experiments/count"),
        "campaigns (100)": (
            lambda: store.campaigns.find_wire(100, 0, ids_limit=100),
            "/campaigns",
        ),
        f"campaign of {BIG_CAMPAIGN:,}, all ids": (
            lambda: store.campaigns.get_wire(big),
            f"/campaign/{big}",
        ),
    }


def query_string(filters: dict[str, Any]) -> str:
    params: list[tuple[str, str]] = [("number", "10")]
    for key, value in filters.items():
        if key == "statuses":
            params.append(("status", ",".join(s.value for s in value)))
        else:
            params.append((key, str(value)))
    return "/experiments?" + urllib.parse.urlencode(params)


def timed(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    """p50 and p99 in ms of ``n`` calls (after 5 warm-up calls)."""
    for _ in range(5):
        fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return percentile(samples, 50), percentile(samples, 99)


@dataclass
class Target:
    """A server the HTTP figures are timed on."""

    via: str  # "http", or "http ref" for the reference code's server
    pid: int
    get: Callable[[str], None]


def timed_http(targets: list[Target], path: str, n: int) -> list[tuple[float, float, float]]:
    """p50 and p99 in ms and the server's CPU ms per request of ``n`` GETs of ``path`` on each
    target (after 5 warm-up calls each); with several targets, requests alternate between them
    (the first of each round changes, so neither always follows the other)."""
    for target in targets:
        for _ in range(5):
            target.get(path)
    samples: list[list[float]] = [[] for _ in targets]
    cpu = [cpu_seconds(t.pid) for t in targets]
    order = list(range(len(targets)))
    for _ in range(n):
        for i in order:
            t0 = time.perf_counter()
            targets[i].get(path)
            samples[i].append((time.perf_counter() - t0) * 1000)
        order.reverse()
    used = [
        (cpu_seconds(t.pid) - before) * 1000 / n for t, before in zip(targets, cpu, strict=True)
    ]
    figures = []
    for values, cpu_ms in zip(samples, used, strict=True):
        values.sort()
        figures.append((percentile(values, 50), percentile(values, 99), cpu_ms))
    return figures


def http_getter(base_url: str) -> tuple[Callable[[str], None], Callable[[], None]]:
    """A GET over one keep-alive connection, opened again if the server closed it when idle."""
    host, port = base_url.removeprefix("http://").split(":")
    conn = [http.client.HTTPConnection(host, int(port), timeout=60)]

    def get(path: str) -> None:
        try:
            conn[0].request("GET", path)
            resp = conn[0].getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            conn[0].close()
            conn[0] = http.client.HTTPConnection(host, int(port), timeout=60)
            conn[0].request("GET", path)
            resp = conn[0].getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: {resp.status} {body[:300]!r}")

    return get, lambda: conn[0].close()


@contextlib.contextmanager
def backend_url(name: str, tmp: Path) -> Iterator[str]:
    if name == "sqlite":
        yield f"sqlite:///{tmp}/scale.sqlite3"
        return
    with postgres() as cluster:
        yield cluster.url(cluster.create_database())


def settle_postgres(store: SqlStore) -> None:
    """VACUUM ANALYZE the loaded tables while that marks more pages all-visible; checkpoint.

    Index-only scans read the heap for every page not marked all-visible. One VACUUM right
    after a bulk load can leave many pages unmarked, and plans then fall back to bitmap scans
    and sorts; a second one marks more (autovacuum comes back too). The share marked is printed.
    """
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("experiments", "campaigns"):
            visible = -1
            for _ in range(5):
                conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
                pages, now = conn.exec_driver_sql(
                    "SELECT relpages, relallvisible FROM pg_class WHERE relname = %(t)s",
                    {"t": table},
                ).one()
                if now <= visible or now >= pages:
                    break
                visible = now
            print(f"postgresql: {table}: {now:,} of {pages:,} pages all-visible", flush=True)
        conn.exec_driver_sql("CHECKPOINT")


def measure_size(
    name: str,
    store: SqlStore,
    data: Dataset,
    size: int,
    n: int,
    servers: list[tuple[str, Server]],
    first: dict[tuple[str, str, str], float],
    rnd: random.Random,
) -> list[list[Any]]:
    """Grow the store to ``size``, then time every list through the store and over HTTP."""
    rate = load(store, data, size, rnd)
    check_round_trip(store, data)
    if name == "postgresql":
        settle_postgres(store)
    print(f"{name}: {size:,} experiments stored (loaded at {rate:,.0f} rows/s)", flush=True)
    print(f"{name}: load average before timing {loadavg()}", flush=True)
    results: dict[tuple[str, str], tuple[float, float, float | None]] = {}
    cases = queries(data)
    others = other_cases(store, data)
    for label, filters in cases.items():
        query = ExperimentQuery(limit=10, **filters)
        results[(label, "store")] = (*timed(lambda q=query: store.experiments.find(q), n), None)
    for label, (call, _) in others.items():
        results[(label, "store")] = (*timed(call, n), None)
    targets: list[Target] = []
    closers: list[Callable[[], None]] = []
    try:
        for via, server in servers:
            get, close = http_getter(server.url)
            closers.append(close)
            targets.append(Target(via, server.pid, get))
        paths = [(label, query_string(filters)) for label, filters in cases.items()]
        paths += [(label, path) for label, (_, path) in others.items()]
        for label, path in paths:
            for target, figures in zip(targets, timed_http(targets, path, n), strict=True):
                results[(label, target.via)] = figures
    finally:
        for close in closers:
            close()
    print(f"{name}: load average after timing {loadavg()}", flush=True)
    rows = []
    for (label, via), (p50, p99, cpu_ms) in sorted(
        results.items(), key=lambda kv: (kv[0][1] != "store", kv[0][1])
    ):
        first.setdefault((label, via, "p50"), p50)
        first.setdefault((label, via, "p99"), p99)
        row: list[Any] = [
            name,
            f"{size:,}",
            label,
            via,
            p50,
            p99,
            p50 / first[(label, via, "p50")],
            p99 / first[(label, via, "p99")],
            "-" if cpu_ms is None else cpu_ms,
        ]
        if len(servers) > 1:
            ref = results.get((label, "http ref"))
            row.append("-" if via != "http" or ref is None else _ratios(p50, p99, cpu_ms, ref))
        rows.append(row)
    return rows


def _ratios(
    p50: float, p99: float, cpu_ms: float | None, ref: tuple[float, float, float | None]
) -> str:
    """This code's p50, p99 and CPU per request divided by the reference's."""
    ref_cpu = ref[2]
    cpu = "-" if not (cpu_ms is not None and ref_cpu) else f"{cpu_ms / ref_cpu:.2f}"
    return f"{p50 / ref[0]:.2f} / {p99 / ref[1]:.2f} / {cpu}"


def run_backend(
    name: str, sizes: list[int], n: int, tmp: Path, reference_src: Path | None
) -> list[list[Any]]:
    rows: list[list[Any]] = []
    with backend_url(name, tmp) as url:
        engine = create_db_engine(url)
        ensure_ready(engine, url)
        store = SqlStore(engine)
        data = Dataset()
        rnd = random.Random(7)
        first: dict[tuple[str, str, str], float] = {}
        with contextlib.ExitStack() as stack:
            servers = [("http", stack.enter_context(labledger_server(url, tmp)))]
            if reference_src is not None:
                reference = labledger_server(url, tmp)
                reference.env["PYTHONPATH"] = str(reference_src)
                servers.append(("http ref", stack.enter_context(reference)))
            for size in sizes:
                rows += measure_size(name, store, data, size, n, servers, first, rnd)
        engine.dispose()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1k and 3k experiments (for CI)")
    parser.add_argument("--sizes", default=None, help="comma-separated, ascending")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--requests", type=int, default=None, help="timed calls per figure")
    parser.add_argument(
        "--reference-src",
        type=Path,
        default=None,
        help="a src folder of labledger (e.g. main's) to time over HTTP beside this code, on a "
        "second server over the same database, requests alternating",
    )
    args = parser.parse_args()
    sizes = [
        int(s)
        for s in (args.sizes or ("1000,3000" if args.quick else "10000,100000,1000000")).split(",")
    ]
    n = args.requests or (20 if args.quick else 300)
    backends = [b for b in args.backends.split(",") if b]

    heading("List latency as the store grows")
    print(f"machine: {machine()}; {n} timed calls per figure, one client")
    all_rows: list[list[Any]] = []
    with workdir("scale") as tmp:
        for backend in backends:
            if backend == "postgresql" and not has_postgres():
                print("postgresql: skipped (PostgreSQL 15 binaries not installed)")
                continue
            all_rows += run_backend(backend, sizes, n, tmp, args.reference_src)
    print()
    print(
        table(
            [
                "backend",
                "experiments",
                "list",
                "via",
                "p50 ms",
                "p99 ms",
                "p50 x smallest",
                "p99 x smallest",
                "server CPU ms/req",
                *(["x ref (p50 / p99 / CPU)"] if args.reference_src else []),
            ],
            all_rows,
        )
    )
    biggest = f"{sizes[-1]:,}"
    worst = max((r for r in all_rows if r[1] == biggest), key=lambda r: r[5], default=None)
    if worst is not None:
        print(
            f"\nslowest at {biggest}: {worst[0]} {worst[2]} via {worst[3]}: "
            f"p99 {worst[5]:.2f} ms ({worst[7]:.2f}x the smallest size; p50 {worst[6]:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
