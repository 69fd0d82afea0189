"""Server throughput and latency over real HTTP on loopback, against a bare reference.

Measures ``labledger serve`` (SQLite, its default stack) for four operations, with 1 and 8
closed-loop keep-alive clients:

    create   POST /experiment (a MADSci registration body)
    get      GET /experiment/{id}
    list     GET /experiments?number=10 (the latest 10)
    status   POST /experiment/{id}/pause and /continue in turn (each client its own experiment)

In the same run it measures the reference: a bare FastAPI app on the same uvicorn stack doing one
SQLite INSERT per request (``_reference_app.py``), and prints every labledger figure as a ratio of
the reference's requests/s at the same number of clients. Rounds alternate the two servers; the
figures are medians over rounds.

    python benchmarks/server.py            # 3 rounds of 5 s per measurement
    python benchmarks/server.py --quick    # 1 round of 1 s
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace

from _common import (
    Server,
    cpu_seconds,
    heading,
    labledger_server,
    machine,
    reference_server,
    request,
    table,
    workdir,
)
from _load import LoadResult, Scenario, loadgen, run_load

CREATE_BODY = json.dumps(
    {
        "experiment_design": {
            "experiment_name": "throughput",
            "experiment_description": "server benchmark",
            "parameters": {"temperature_c": 25.0, "sample": "A1"},
        },
        "run_name": "bench run",
        "run_description": "created by benchmarks/server.py",
    }
).encode()

CLIENTS = (1, 8)


def seed(base_url: str, n: int = 8) -> list[str]:
    """Create ``n`` experiments (one per client) for get and status to act on; their ids."""
    ids = []
    for i in range(n):
        status, body = request(base_url, "POST", "/experiment", json.loads(CREATE_BODY))
        if status != 200:
            raise RuntimeError(f"cannot create experiment {i}: {status} {body}")
        ids.append(body["_id"])
    return ids


def scenarios(base_url: str) -> list[Scenario]:
    """The four labledger operations, over experiments made by :func:`seed`."""
    ids = seed(base_url)
    return [
        Scenario("create", [[("POST", "/experiment", CREATE_BODY)]]),
        Scenario("get", [[("GET", f"/experiment/{i}", None)] for i in ids]),
        Scenario("list", [[("GET", "/experiments?number=10", None)]]),
        Scenario(
            "status",
            [
                [
                    ("POST", f"/experiment/{i}/pause", b""),
                    ("POST", f"/experiment/{i}/continue", b""),
                ]
                for i in ids
            ],
        ),
    ]


REFERENCE = Scenario("insert", [[("POST", "/experiment", CREATE_BODY)]])


def measure(server: Server, scenario: Scenario, clients: int, seconds: float) -> LoadResult:
    """Load figures plus the server's CPU time per request (which the shared machine's other
    work disturbs far less than wall-clock figures)."""
    before = cpu_seconds(server.pid)
    result = run_load(server.url, scenario, clients, seconds)
    used = cpu_seconds(server.pid) - before
    return replace(result, cpu_us=used / max(1, result.requests) * 1e6)


def median_result(results: list[LoadResult]) -> LoadResult:
    return LoadResult(
        tool=results[0].tool,
        clients=results[0].clients,
        requests=sum(r.requests for r in results),
        seconds=sum(r.seconds for r in results),
        errors=sum(r.errors for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        cpu_us=statistics.median(r.cpu_us for r in results),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s (for CI)")
    parser.add_argument("--seconds", type=float, default=None, help="per measurement")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    seconds = args.seconds or (1.0 if args.quick else 5.0)
    rounds = args.rounds or (1 if args.quick else 3)

    heading("Server throughput and latency (loopback HTTP, keep-alive, closed loop)")
    print(f"machine: {machine()}")
    print(f"load generator: {loadgen()}; {rounds} round(s) of {seconds:g} s per measurement")

    ref_runs: dict[int, list[LoadResult]] = {c: [] for c in CLIENTS}
    ll_runs: dict[tuple[str, int], list[LoadResult]] = {}
    names: list[str] = []
    with workdir("server") as tmp:
        for round_no in range(rounds):
            with reference_server(tmp / "reference.sqlite3", tmp) as ref:
                if round_no == 0:
                    run_load(ref.url, REFERENCE, 8, 1)  # warm-up
                for clients in CLIENTS:
                    ref_runs[clients].append(measure(ref, REFERENCE, clients, seconds))
            db = tmp / f"labledger-{round_no}.sqlite3"
            with labledger_server(f"sqlite:///{db}", tmp) as server:
                cases = scenarios(server.url)
                names = [s.name for s in cases]
                for scenario in cases:
                    run_load(server.url, scenario, 8, 1 if round_no == 0 else 0.5)  # warm-up
                    for clients in CLIENTS:
                        result = measure(server, scenario, clients, seconds)
                        ll_runs.setdefault((scenario.name, clients), []).append(result)

    rows = []
    failed = False
    ref_rps = {c: statistics.median(r.rps for r in ref_runs[c]) for c in CLIENTS}
    ref_cpu = {c: statistics.median(r.cpu_us for r in ref_runs[c]) for c in CLIENTS}
    for clients in CLIENTS:
        ref = median_result(ref_runs[clients])
        rows.append(
            [
                "reference INSERT",
                clients,
                ref_rps[clients],
                ref.p50_ms,
                ref.p99_ms,
                1.0,
                ref.cpu_us,
                1.0,
                ref.errors,
            ]
        )
        failed |= ref.errors > 0
    for name in names:
        for clients in CLIENTS:
            runs = ll_runs[(name, clients)]
            rps = statistics.median(r.rps for r in runs)
            merged = median_result(runs)
            rows.append(
                [
                    f"labledger {name}",
                    clients,
                    rps,
                    merged.p50_ms,
                    merged.p99_ms,
                    rps / ref_rps[clients],
                    merged.cpu_us,
                    ref_cpu[clients] / merged.cpu_us,
                    merged.errors,
                ]
            )
            failed |= merged.errors > 0
    print()
    print(
        table(
            [
                "operation",
                "clients",
                "req/s",
                "p50 ms",
                "p99 ms",
                "x reference",
                "server CPU us/req",
                "x reference (CPU)",
                "errors",
            ],
            rows,
        )
    )
    create8 = next(r for r in rows if r[0] == "labledger create" and r[1] == 8)
    print(
        "\nx reference = labledger req/s / reference req/s; x reference (CPU) = reference CPU "
        "per request / labledger CPU per request (the server's own CPU time, from /proc)"
    )
    print(
        f"target create@8: >= 0.35x reference and p99 < 50 ms -> {create8[5]:.2f}x, "
        f"p99 {create8[4]:.1f} ms: {'met' if create8[5] >= 0.35 and create8[4] < 50 else 'NOT met'}"
    )
    if failed:
        print("ERROR: some requests failed (answers of 400 or more, or transport errors)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
