"""A closed-loop HTTP load generator: ``wrk`` when installed, else ``http.client`` in threads.

Each client holds one keep-alive connection and has one request in flight at a time (closed
loop). A :class:`Scenario` gives every client a cycle of requests; client ``i`` repeats cycle
``i % len(cycles)``, which lets a client alternate pause/continue on an experiment of its own.

wrk (Debian package ``wrk``) is preferred: a Python load generator saturates a core long before
the server does (see /work/shared/reference/performance.md). Set ``LABLEDGER_BENCH_LOADGEN=python``
to force the fallback. Any answer of 400 or more is counted and reported as an error.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from _common import percentile

Step = tuple[str, str, bytes | None]


@dataclass(frozen=True)
class Scenario:
    """Named request cycles, one per client (wrapping around)."""

    name: str
    cycles: list[list[Step]]


@dataclass(frozen=True)
class LoadResult:
    tool: str
    clients: int
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float
    cpu_us: float = float("nan")  # server CPU time per request, when measured

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def loadgen() -> str:
    """The load generator in use: ``wrk`` or ``python``."""
    forced = os.environ.get("LABLEDGER_BENCH_LOADGEN")
    if forced in ("wrk", "python"):
        return forced
    return "wrk" if shutil.which("wrk") else "python"


def run_load(base_url: str, scenario: Scenario, clients: int, seconds: float) -> LoadResult:
    """Drive ``scenario`` with ``clients`` closed-loop connections for ``seconds``."""
    if loadgen() == "wrk":
        return _run_wrk(base_url, scenario, clients, seconds)
    return _run_threads(base_url, scenario, clients, seconds)


# --------------------------------------------------------------------------------------------
# wrk

_LUA = """
local cycles = {%(cycles)s}
local headers = {["Content-Type"] = "application/json"}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

function init(args)
  n = 0
  cyc = cycles[(tid %% #cycles) + 1]
end

function request()
  n = n + 1
  local s = cyc[((n - 1) %% #cyc) + 1]
  return wrk.format(s[1], s[2], headers, s[3])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"p50_us":%%.1f,"p99_us":%%.1f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _lua_string(text: str) -> str:
    level = "=" * 4
    assert f"]{level}]" not in text
    return f"[{level}[{text}]{level}]"


def _lua_script(scenario: Scenario) -> str:
    cycles = []
    for cycle in scenario.cycles:
        steps = []
        for method, path, body in cycle:
            body_lua = _lua_string(body.decode()) if body is not None else '""'
            if method == "GET" and body is None:
                body_lua = "nil"
            steps.append(f"{{{_lua_string(method)}, {_lua_string(path)}, {body_lua}}}")
        cycles.append("{" + ", ".join(steps) + "}")
    return _LUA % {"cycles": ",\n".join(cycles)}


def _run_wrk(base_url: str, scenario: Scenario, clients: int, seconds: float) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua_script(scenario))
    try:
        proc = subprocess.run(
            [
                "wrk",
                f"-t{clients}",
                f"-c{clients}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                base_url,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + 60,
        )
    finally:
        Path(script.name).unlink()
    match = re.search(r"^WRKJSON (.*)$", proc.stdout, re.MULTILINE)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    data = json.loads(match.group(1))
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return LoadResult(
        tool="wrk",
        clients=clients,
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )


# --------------------------------------------------------------------------------------------
# http.client in threads


def _run_threads(base_url: str, scenario: Scenario, clients: int, seconds: float) -> LoadResult:
    host, port = base_url.removeprefix("http://").split(":")
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(index: int) -> None:
        cycle = scenario.cycles[index % len(scenario.cycles)]
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.connect()
        mine = latencies[index]
        headers = {"Content-Type": "application/json"}
        start.wait()
        n = 0
        clock = time.perf_counter
        while True:
            t0 = clock()
            if t0 >= deadline[0]:
                break
            method, path, body = cycle[n % len(cycle)]
            n += 1
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                errors[index] += 1
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                continue
            mine.append(clock() - t0)
            if resp.status >= 400:
                errors[index] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    deadline[0] = time.perf_counter() + seconds
    began = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    merged = sorted(x for lat in latencies for x in lat)
    return LoadResult(
        tool="python",
        clients=clients,
        requests=len(merged),
        seconds=elapsed,
        errors=sum(errors),
        p50_ms=percentile(merged, 50) * 1000,
        p99_ms=percentile(merged, 99) * 1000,
    )
