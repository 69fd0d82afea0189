"""Metric series: ingest, downsampling, and lists filtered and sorted on a metric.

ingest      points/s through ``POST /experiment/{id}/metrics`` of a real ``labledger serve``
            on SQLite, batches of 5,000 points (step, value, timestamp), one client, the
            request bodies encoded before the clock starts (and, as a second row, built
            and encoded inside the timed loop); and MLflow's ``log_batch`` (its own batch
            limit, 1,000 metrics, the Metric lists also built before the clock starts) into
            a SQLite tracking store on the same machine in the same run, when an MLflow venv
            is given with ``--mlflow-python``
downsample  one series of 1,000,000 points read back as 1,000 (the store's query: bucket
            extremes from the block table): cold (the first read of a new process with a new
            connection, the database file in the OS cache) and the median of 20 reads after
list        ``GET /experiments?where=metrics.loss<0.5&sort=metrics.loss&number=20`` over
            100,000 experiments with a loss series each, p50/p99 of 200 requests

Every section prints the load average beside its figures, and the figures recorded before
(``PREVIOUS``) beside the new ones.

python benchmarks/metrics.py               # full sizes
python benchmarks/metrics.py --quick       # small sizes (CI)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import (
    cpu_seconds,
    heading,
    labledger_server,
    loadavg,
    machine,
    percentile,
    table,
    workdir,
)

from labledger.core.metrics import MetricPointIn
from labledger.core.models import ExperimentQuery
from labledger.core.where import parse_where
from labledger.storage.engine import create_db_engine, write_transaction
from labledger.storage.metrics_sql import MetricSqlStore
from labledger.storage.schema import ensure_ready
from labledger.storage.sql import SqlStore
from labledger.storage.tables import experiments, metric_series

BATCH = 5_000

#: the figures recorded before (full sizes, 2026-11-30 on the shared 2-core machine)
PREVIOUS = {
    "ingest": "33,608 points/s, 7.1x MLflow log_batch (4,734/s), bodies built in the loop",
    "downsample": "cold 106 ms, p50 18 ms",
    "list": "store p99 9.8 ms, HTTP p99 13.8 ms",
    "compare": "p50 804 ms, max 1,013 ms",
}

COLD_READ = r"""
import sys, time
started = time.perf_counter()
from labledger.storage.engine import create_db_engine
from labledger.storage.metrics_sql import MetricSqlStore
engine = create_db_engine(sys.argv[1])
store = MetricSqlStore(engine)
times, cpu = [], []
for _ in range(int(sys.argv[3])):
    started, cpu_started = time.perf_counter(), time.process_time()
    series = store.read_series(sys.argv[2], "loss", 1000)
    times.append(time.perf_counter() - started)
    cpu.append(time.process_time() - cpu_started)
    assert len(series.points) <= 1000 and series.downsampled
print(" ".join(str(t) for t in times))
print(" ".join(str(t) for t in cpu))
"""

MLFLOW_SCRIPT = r"""
import sys, time
import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

uri, total = sys.argv[1], int(sys.argv[2])
client = MlflowClient(tracking_uri=uri)
exp = client.create_experiment("bench")
run = client.create_run(exp)
now = int(time.time() * 1000)
batches = [
    [Metric("loss", 1.0 / (i + 1), now, i) for i in range(start, start + 1000)]
    for start in range(0, total, 1000)
]
started, cpu = time.perf_counter(), time.process_time()
for metrics in batches:
    client.log_batch(run.info.run_id, metrics=metrics)
print(total / (time.perf_counter() - started), total / (time.process_time() - cpu))
"""


def _post(conn: http.client.HTTPConnection, path: str, body: Any) -> Any:
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"POST {path}: {resp.status} {data[:300]!r}")
    return json.loads(data)


def ingest(total: int) -> tuple[float, float, float]:
    """Points per second through the HTTP route: (request bodies encoded before the clock
    starts, as for MLflow below; bodies built and encoded inside the timed loop; points per
    second of the server's CPU time with the prepared bodies, which load on a shared machine
    changes far less than wall time)."""
    with workdir("metrics-ingest") as folder:
        url = f"sqlite:///{folder}/labledger.sqlite3"
        with labledger_server(url, folder) as server:
            host, port = server.url.removeprefix("http://").split(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            now = datetime.now(UTC).isoformat()
            rates, cpu = [], 0.0
            for prepared in (True, False):
                exp = _post(conn, "/experiment", {"experiment_design": {"experiment_name": "b"}})
                path = f"/experiment/{exp['_id']}/metrics"

                def body(start: int, now: str = now) -> dict[str, Any]:
                    points = [
                        {"name": "loss", "value": 1.0 / (i + 1), "step": i, "timestamp": now}
                        for i in range(start, min(total, start + BATCH))
                    ]
                    return {"metrics": points}

                starts = range(0, total, BATCH)
                bodies = [json.dumps(body(start)) for start in starts] if prepared else []
                cpu_before = cpu_seconds(server.pid)
                started = time.perf_counter()
                for n, start in enumerate(starts):
                    _post_raw(conn, path, bodies[n] if prepared else json.dumps(body(start)))
                rates.append(total / (time.perf_counter() - started))
                if prepared:
                    cpu = total / (cpu_seconds(server.pid) - cpu_before)
            conn.close()
    return rates[0], rates[1], cpu


def _post_raw(conn: http.client.HTTPConnection, path: str, body: str) -> None:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"POST {path}: {resp.status} {data[:300]!r}")


def mlflow_ingest(python: Path, total: int) -> tuple[float, float]:
    """(points per second, points per second of the writing process' CPU time)."""
    with workdir("metrics-mlflow") as folder:
        script = folder / "bench.py"
        script.write_text(MLFLOW_SCRIPT)
        uri = f"sqlite:///{folder}/mlflow.db"
        out = subprocess.run(
            [str(python), str(script), uri, str(total)],
            capture_output=True,
            text=True,
            check=True,
            cwd=folder,
        )
        wall, cpu = out.stdout.strip().splitlines()[-1].split()
        return float(wall), float(cpu)


def downsample(total: int, reads: int) -> tuple[float, float, float, float, float]:
    """(cold ms, p50 ms, max ms, cold CPU ms, p50 CPU ms): the first read of a new process,
    then the next ``reads``; CPU time is what load on a shared machine changes least."""
    with workdir("metrics-downsample") as folder:
        url = f"sqlite:///{folder}/labledger.sqlite3"
        engine = create_db_engine(url)
        ensure_ready(engine, url)
        exp_id = _experiments(engine, 1)[0]
        store = MetricSqlStore(engine)
        rng = random.Random(1)
        for start in range(0, total, 20_000):
            points = [
                MetricPointIn(name="loss", value=rng.random() + i / total, step=i)
                for i in range(start, min(total, start + 20_000))
            ]
            store.add_points(exp_id, points, time.time())
        engine.dispose()
        out = subprocess.run(
            [sys.executable, "-c", COLD_READ, url, exp_id, str(reads + 1)],
            capture_output=True,
            text=True,
            check=True,
        )
    wall_line, cpu_line = out.stdout.strip().splitlines()[-2:]
    cold, *times = sorted_after_first(wall_line)
    cold_cpu, *cpu = sorted_after_first(cpu_line)
    return (
        cold * 1000,
        percentile(times, 50) * 1000,
        times[-1] * 1000,
        cold_cpu * 1000,
        percentile(cpu, 50) * 1000,
    )


def sorted_after_first(line: str) -> list[float]:
    """The numbers of ``line``: the first as it is, the others sorted."""
    first, *rest = (float(t) for t in line.split())
    return [first, *sorted(rest)]


def _experiments(engine: Any, count: int) -> list[str]:
    from labledger.core.ids import new_ulid

    base = datetime(2026, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(count):
        at = base + timedelta(seconds=i)
        rows.append(
            {
                "id": new_ulid(),
                "status": "completed",
                "name": f"run {i}",
                "ownership": {},
                "parameters": {"lr": 10 ** -(i % 4)},
                "metadata": {},
                "priority": 0,
                "attempts": 0,
                "version": 1,
                "created_at": at,
                "updated_at": at,
            }
        )
    with write_transaction(engine) as conn:
        for start in range(0, count, 20_000):
            conn.execute(experiments.insert(), rows[start : start + 20_000])
    return [r["id"] for r in rows]


def filtered_list(count: int, requests: int) -> tuple[float, float, float, float]:
    """(store p50, store p99, http p50, http p99) in ms."""
    with workdir("metrics-list") as folder:
        url = f"sqlite:///{folder}/labledger.sqlite3"
        engine = create_db_engine(url)
        ensure_ready(engine, url)
        ids = _experiments(engine, count)
        rng = random.Random(2)
        with write_transaction(engine) as conn:
            rows = [
                {
                    "experiment_id": exp_id,
                    "name": "loss",
                    "point_count": 1,
                    "first_step": 0,
                    "last_step": 0,
                    "last_value": rng.random(),
                    "last_at": 0.0,
                    "min_value": 0.0,
                    "max_value": 1.0,
                }
                for exp_id in ids
            ]
            for start in range(0, count, 20_000):
                conn.execute(metric_series.insert(), rows[start : start + 20_000])
            conn.exec_driver_sql("ANALYZE")
        store = SqlStore(engine)
        query = ExperimentQuery(
            where=[parse_where("metrics.loss<0.5")], sort="metrics.loss", limit=20
        )
        store_times = []
        for _ in range(requests):
            started = time.perf_counter()
            store.experiments.find(query)
            store_times.append(time.perf_counter() - started)
        engine.dispose()
        http_times = []
        with labledger_server(url, folder) as server:
            host, port = server.url.removeprefix("http://").split(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            path = "/experiments?number=20&where=metrics.loss%3C0.5&sort=metrics.loss"
            for _ in range(requests):
                started = time.perf_counter()
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
                http_times.append(time.perf_counter() - started)
                assert resp.status == 200 and len(json.loads(body)) == 20
            conn.close()
    store_times.sort()
    http_times.sort()
    return (
        percentile(store_times, 50) * 1000,
        percentile(store_times, 99) * 1000,
        percentile(http_times, 50) * 1000,
        percentile(http_times, 99) * 1000,
    )


def compare_page(runs: int, metrics: int, points: int, renders: int) -> tuple[float, float, float]:
    """(p50, max, server CPU per render) in ms of rendering the compare page over a real
    server (the CPU time is what load on a shared machine changes least)."""
    with workdir("metrics-compare") as folder:
        url = f"sqlite:///{folder}/labledger.sqlite3"
        engine = create_db_engine(url)
        ensure_ready(engine, url)
        ids = _experiments(engine, runs)
        store = MetricSqlStore(engine)
        rng = random.Random(3)
        for exp_id in ids:
            batch = [
                MetricPointIn(name=f"m{k}", value=rng.random() / (i + 1), step=i)
                for k in range(metrics)
                for i in range(points)
            ]
            store.add_points(exp_id, batch, time.time())
        engine.dispose()
        times = []
        with labledger_server(url, folder) as server:
            host, port = server.url.removeprefix("http://").split(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
            path = "/ui/compare?ids=" + ",".join(ids)
            conn.request("GET", path)  # once before the clock: the server's first page
            conn.getresponse().read()
            cpu_before = cpu_seconds(server.pid)
            for _ in range(renders):
                started = time.perf_counter()
                conn.request("GET", path)
                resp = conn.getresponse()
                body = resp.read()
                times.append(time.perf_counter() - started)
                curves = body.count(b'<g class="curve"')
                assert resp.status == 200 and curves == runs * metrics, (resp.status, curves)
            cpu = (cpu_seconds(server.pid) - cpu_before) / renders
            conn.close()
    times.sort()
    return percentile(times, 50) * 1000, times[-1] * 1000, cpu * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI")
    parser.add_argument(
        "--mlflow-python", type=Path, default=None, help="python of a venv with mlflow installed"
    )
    parser.add_argument(
        "--only",
        choices=["ingest", "downsample", "list", "compare"],
        action="append",
        help="run only these sections (repeatable)",
    )
    args = parser.parse_args()
    only = set(args.only or ["ingest", "downsample", "list", "compare"])
    if args.mlflow_python is None:
        # the venv the tests build (tests/labledger_fixtures.py cached_venv_python)
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        found = sorted((cache / "labledger-tests").glob("mlflow-*/bin/python"))
        args.mlflow_python = found[-1] if found else None
    points = 20_000 if args.quick else 500_000
    series = 50_000 if args.quick else 1_000_000
    count = 2_000 if args.quick else 100_000
    print(f"machine: {machine()}")

    if "ingest" in only:
        heading("Metric ingest (SQLite, one client, batches of 5,000)")
        print(f"load average before: {loadavg()}")
        ours, built_in_loop, ours_cpu = ingest(points)
        rows: list[list[Any]] = [
            ["labledger POST /experiment/{id}/metrics", points, f"{ours:,.0f}", "", ours_cpu, ""],
            ["  same, bodies built in the loop", points, built_in_loop, "", "", ""],
        ]
        if args.mlflow_python is not None:
            theirs, theirs_cpu = mlflow_ingest(args.mlflow_python, points // 10)
            rows.append(
                [
                    "MLflow log_batch (SQLite store)",
                    points // 10,
                    theirs,
                    "1.0x",
                    theirs_cpu,
                    "1.0x",
                ]
            )
            rows[0][3] = f"{ours / theirs:.1f}x MLflow"
            rows[1][3] = f"{built_in_loop / theirs:.1f}x MLflow"
            rows[0][5] = f"{ours_cpu / theirs_cpu:.1f}x MLflow"
        else:
            print("MLflow not found: pass --mlflow-python (a venv with mlflow) for the comparison")
        headers = ["writer", "points", "points/s", "ratio", "points/CPU-s", "CPU ratio"]
        print(table(headers, rows))
        print(f"load average after: {loadavg()}; previous: {PREVIOUS['ingest']}")

    if "downsample" in only:
        heading(f"Downsample a series of {series:,} points to 1,000")
        print(f"load average before: {loadavg()}")
        cold, p50, worst, cold_cpu, p50_cpu = downsample(series, 20)
        print(
            table(
                ["points", "cold ms (new process)", "p50 ms", "max ms", "CPU ms cold / p50"],
                [
                    [
                        f"{series:,}",
                        f"{cold:.1f}",
                        f"{p50:.1f}",
                        f"{worst:.1f}",
                        f"{cold_cpu:.1f} / {p50_cpu:.1f}",
                    ]
                ],
            )
        )
        print(f"load average after: {loadavg()}; previous: {PREVIOUS['downsample']}")

    if "list" in only:
        heading(f"Filtered and sorted on a metric, {count:,} experiments")
        print(f"load average before: {loadavg()}")
        sp50, sp99, hp50, hp99 = filtered_list(count, 200)
        print(
            table(
                ["experiments", "store p50 ms", "store p99 ms", "http p50 ms", "http p99 ms"],
                [[f"{count:,}", f"{sp50:.1f}", f"{sp99:.1f}", f"{hp50:.1f}", f"{hp99:.1f}"]],
            )
        )
        print(f"load average after: {loadavg()}; previous: {PREVIOUS['list']}")

    if "compare" in only:
        runs, per = (4, 1_000) if args.quick else (20, 10_000)
        heading(f"Compare page, {runs} runs x 5 metrics x {per:,} points")
        print(f"load average before: {loadavg()}")
        p50, worst, cpu = compare_page(runs, 5, per, 10)
        print(
            table(
                ["runs", "metrics", "points each", "p50 ms", "max ms", "server CPU ms/page"],
                [[runs, 5, f"{per:,}", f"{p50:.0f}", f"{worst:.0f}", f"{cpu:.0f}"]],
            )
        )
        print(f"load average after: {loadavg()}; previous: {PREVIOUS['compare']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
