"""What access control and idempotency cost, over real HTTP on loopback.

In one run, on one ``labledger serve`` (SQLite), with 4 keep-alive clients:

    create           POST /experiment without a key (the reference for the next line)
    create + key     POST /experiment with a fresh Idempotency-Key each time (what our client sends)
    list (open)      GET /experiments?number=10 with no token in the database (the reference)
    list (token)     the same with a token required and sent as Bearer (after `token create`)

Figures: requests/s, and the server's CPU time per request, which other work on a shared
machine disturbs far less than wall-clock figures; each line against its reference.

    python benchmarks/hardening.py            # 3 s per measurement
    python benchmarks/hardening.py --quick    # 1 s
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
import uuid

from _common import Server, cpu_seconds, heading, labledger_server, machine, table, workdir

CLIENTS = 4
BODY = json.dumps({"experiment_design": {"experiment_name": "hardening bench"}}).encode()


def load(
    url: str, method: str, path: str, headers: dict[str, str], body: bytes | None, seconds: float
) -> tuple[int, int, float]:
    """Run CLIENTS closed-loop clients for ``seconds``; return (ok, errors, elapsed)."""
    host, port = url.removeprefix("http://").split(":")
    counts = {"ok": 0, "errors": 0}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        ok = errors = 0
        while time.monotonic() < stop:
            sent = dict(headers)
            if "Idempotency-Key" in sent:
                sent["Idempotency-Key"] = str(uuid.uuid4())
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            response.read()
            if response.status < 300:
                ok += 1
            else:
                errors += 1
        conn.close()
        with lock:
            counts["ok"] += ok
            counts["errors"] += errors

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts["ok"], counts["errors"], time.monotonic() - started


def measure(
    server: Server, method: str, path: str, headers: dict[str, str], seconds: float
) -> tuple[float, float, int]:
    """(requests/s, server CPU us per request, errors)."""
    body = BODY if method == "POST" else None
    all_headers = {"Content-Type": "application/json", **headers}
    load(server.url, method, path, all_headers, body, min(1.0, seconds / 3))  # warm-up
    before = cpu_seconds(server.pid)
    ok, errors, elapsed = load(server.url, method, path, all_headers, body, seconds)
    used = cpu_seconds(server.pid) - before
    return ok / elapsed, used / max(1, ok + errors) * 1e6, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 s per measurement (for CI)")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else 3.0

    heading("Cost of access control and idempotency (loopback HTTP, 4 keep-alive clients)")
    print(f"machine: {machine()}")
    rows = []
    with workdir("hardening") as tmp:
        url = f"sqlite:///{tmp / 'bench.sqlite3'}"
        with labledger_server(url, tmp) as server:
            create = measure(server, "POST", "/experiment", {}, seconds)
            keyed = measure(server, "POST", "/experiment", {"Idempotency-Key": "x"}, seconds)
            listed = measure(server, "GET", "/experiments?number=10", {}, seconds)
        from labledger.storage.access_sql import TokenStore
        from labledger.storage.engine import create_db_engine

        engine = create_db_engine(url)
        _, secret = TokenStore(engine).create("bench", "read")
        engine.dispose()
        with labledger_server(url, tmp) as server:
            bearer = {"Authorization": f"Bearer {secret}"}
            guarded = measure(server, "GET", "/experiments?number=10", bearer, seconds)
            refused = measure(server, "GET", "/experiments?number=10", {}, seconds)
    for name, figures, reference in (
        ("create", create, create),
        ("create + Idempotency-Key", keyed, create),
        ("list (no tokens)", listed, listed),
        ("list (Bearer token)", guarded, listed),
    ):
        rps, cpu, errors = figures
        rows.append([name, rps, rps / reference[0], cpu, cpu / reference[1], errors])
    print()
    print(table(["operation", "req/s", "x reference", "CPU us/req", "x ref CPU", "errors"], rows))
    print(f"\nrequests without a token once one exists: {refused[2]} of them answered 401")
    return 1 if any(r[-1] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
