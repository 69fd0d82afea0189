"""Server resident memory (RSS, from /proc) over 100,000 requests.

A real ``labledger serve`` (SQLite) takes a mixed load from 8 closed-loop clients: each repeats
create an experiment, get one, list the latest 10. The load runs in chunks; after each chunk the
server's VmRSS is read from ``/proc/<pid>/status``. Printed: RSS after start, after the first
chunk (warm), then along the way, and the growth from warm to the end.

    python benchmarks/memory.py             # 100,000 requests
    python benchmarks/memory.py --quick     # 2,000 requests
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from _common import heading, labledger_server, machine, rss_mb, table, workdir
from _load import Scenario, loadgen, run_load

from server import CREATE_BODY, seed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 requests (for CI)")
    parser.add_argument("--requests", type=int, default=None)
    args = parser.parse_args()
    target = args.requests or (2_000 if args.quick else 100_000)
    chunk_seconds = 1.0 if args.quick else 10.0

    heading(f"Server memory over {target:,} requests")
    print(f"machine: {machine()}; load generator: {loadgen()}, 8 clients")
    rows: list[list[Any]] = []
    errors = 0
    with workdir("memory") as tmp, labledger_server(f"sqlite:///{tmp}/memory.sqlite3", tmp) as srv:
        rows.append(["after start", 0, rss_mb(srv.pid)])
        ids = seed(srv.url)
        mixed = Scenario(
            "mixed",
            [
                [
                    ("POST", "/experiment", CREATE_BODY),
                    ("GET", f"/experiment/{i}", None),
                    ("GET", "/experiments?number=10", None),
                ]
                for i in ids
            ],
        )
        done = 0
        warm = None
        next_report = 0
        while done < target:
            result = run_load(srv.url, mixed, 8, chunk_seconds)
            done += result.requests
            errors += result.errors
            rss = rss_mb(srv.pid)
            if warm is None:
                warm = rss
                rows.append(["warm (first chunk)", done, rss])
                next_report = done + target // 10
            elif done >= next_report or done >= target:
                rows.append(["", done, rss])
                next_report = done + target // 10
        final = rss_mb(srv.pid)
    print()
    print(table(["", "requests", "RSS MiB"], rows))
    assert warm is not None
    print(
        f"\nafter {done:,} requests: {final:.0f} MiB ({final - warm:+.0f} MiB since warm); "
        f"target < 200 MB: {'met' if final * 1.048576 < 200 else 'NOT met'}"
    )
    if errors:
        print(f"ERROR: {errors} requests failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
