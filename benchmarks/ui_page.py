"""The experiments page of the web UI with 100,000 experiments stored, against its JSON twin.

Loads the experiments in bulk (the loader of ``scale.py``: realistic rows, ``executemany`` in one
transaction per 20,000), starts a real ``labledger serve`` on SQLite and times, over one
keep-alive loopback connection, requests one after another:

    page    GET /ui/experiments?...        the server-rendered HTML page (count + list + template)
    list    GET /experiments?...           its JSON twin: the same rows
    count   GET /experiments/count?...     the twin of the page's total

for the first page, a filtered page, a sorted page and a deep page. It prints the median and p99
of each, and the ratio of the page to its twin (list + count, the two calls a client makes to
show the same thing). Figures only; nothing is asserted about time.

    python benchmarks/ui_page.py              # 100,000 experiments, 50 requests per figure
    python benchmarks/ui_page.py --small      # 1,000 experiments, 20 requests (--quick too)
    python benchmarks/ui_page.py --experiments 300000 --requests 100
"""

from __future__ import annotations

import argparse
import http.client
import random
import time
from collections.abc import Callable

from _common import heading, labledger_server, machine, percentile, table, workdir
from scale import Dataset, check_round_trip, load

from labledger.storage.engine import create_db_engine
from labledger.storage.schema import ensure_ready
from labledger.storage.sql import SqlStore

PAGE_SIZE = 50


def timer(conn: http.client.HTTPConnection, path: str) -> Callable[[], float]:
    """A function that GETs ``path`` once and returns the seconds it took (body read)."""

    def once() -> float:
        started = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 200 or not body:
            raise RuntimeError(f"GET {path} answered {response.status}: {body[:300]!r}")
        return elapsed

    return once


def measure(runs: list[Callable[[], float]], n: int) -> list[tuple[float, float]]:
    """(median, p99) in milliseconds of each run over ``n`` rounds, after two warm-up rounds.

    The runs take turns within each round, so a busy moment of the machine slows all of them
    alike rather than one.
    """
    for _ in range(2):
        for run in runs:
            run()
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(n):
        for i, run in enumerate(runs):
            times[i].append(run() * 1000)
    return [(percentile(sorted(t), 50), percentile(sorted(t), 99)) for t in times]


def cases(total: int) -> list[tuple[str, str, str]]:
    """(name, page query, twin filter query) for each view timed."""
    last = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    deep = min(last, 1000)
    return [
        ("first page", "", ""),
        ("status=failed", "status=failed", "status=failed"),
        ("sorted by name", "sort=name", "sort=name"),
        ("text=S123", "text=S123", "text=S123"),
        (f"page {deep:,}", f"page={deep}", ""),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--small", "--quick", action="store_true", help="1,000 experiments, 20 requests (CI)"
    )
    parser.add_argument("--experiments", type=int, default=None)
    parser.add_argument("--requests", type=int, default=None)
    args = parser.parse_args()
    total = args.experiments or (1_000 if args.small else 100_000)
    n = args.requests or (20 if args.small else 50)

    heading(f"Experiments page vs its JSON twin, {total:,} experiments (SQLite)")
    print(machine())
    with workdir("ui-page") as tmp:
        url = f"sqlite:///{tmp}/ui.sqlite3"
        engine = create_db_engine(url)
        ensure_ready(engine, url)
        store = SqlStore(engine)
        data = Dataset()
        started = time.perf_counter()
        rate = load(store, data, total, random.Random(7))
        check_round_trip(store, data)
        engine.dispose()
        print(
            f"loaded {total:,} experiments in {time.perf_counter() - started:.1f} s "
            f"({rate:,.0f} rows/s)\n"
        )
        with labledger_server(url, tmp) as server:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            rows = []
            for name, page_q, filt in cases(total):
                page_no = int(page_q.split("=")[1]) if page_q.startswith("page=") else 1
                offset = (page_no - 1) * PAGE_SIZE
                sep = "&" if filt else ""
                page_ms, list_ms, count_ms = measure(
                    [
                        timer(conn, f"/ui/experiments?size={PAGE_SIZE}&{page_q}"),
                        timer(conn, f"/experiments?number={PAGE_SIZE}&offset={offset}{sep}{filt}"),
                        timer(conn, f"/experiments/count?{filt}"),
                    ],
                    n,
                )
                twin = list_ms[0] + count_ms[0]
                rows.append(
                    [
                        name,
                        f"{page_ms[0]:.1f} / {page_ms[1]:.1f}",
                        f"{list_ms[0]:.1f} / {list_ms[1]:.1f}",
                        f"{count_ms[0]:.1f} / {count_ms[1]:.1f}",
                        f"{page_ms[0] / twin:.2f}",
                    ]
                )
            conn.close()
    print(
        table(
            [
                "view",
                "page ms (median / p99)",
                "twin list ms",
                "twin count ms",
                "page / (list + count)",
            ],
            rows,
        )
    )
    print(
        f"\n{n} requests per figure (page, list and count taking turns), one keep-alive "
        f"connection over loopback, {PAGE_SIZE} rows per page; the page runs the same count and "
        "list as its twin, then renders HTML."
    )


if __name__ == "__main__":
    main()
