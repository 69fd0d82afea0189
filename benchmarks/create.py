"""Creates at 8 clients side by side: labledger, the bare floor and an MLflow tracking server.

Three (or four) servers, each in its own process on loopback, driven in turn with the same load
(8 closed-loop keep-alive clients, ``_load.py``), rounds alternating their order:

    floor      the bare FastAPI app doing one SQLite INSERT per request (``_reference_app.py``)
    labledger  ``labledger serve`` on SQLite: POST /experiment (a MADSci registration body),
               and GET /experiment/{id} and GET /experiments?number=10 for the read side
    previous   the same for an older labledger (``--previous REF``, a git revision; its ``src``
               is taken with ``git archive`` and put first on the server's PYTHONPATH)
    MLflow     an MLflow 3 tracking server (SQLite store, one worker) from its own venv:
               POST /api/2.0/mlflow/runs/create (a run with a name and a note), MLflow's
               nearest equivalent of registering an experiment run

It prints req/s, p50/p99 and the server's CPU time per request (all its processes, from
/proc), each create as a multiple of the floor and of MLflow measured in the same run, the load
average before and after each measurement, and the targets: create at 8 clients >= 10x MLflow,
>= 0.35x the floor, p99 < 50 ms; with ``--previous``, get and list beside the previous code.

    python benchmarks/create.py                       # 3 rounds of 5 s
    python benchmarks/create.py --quick               # 1 round of 1 s, no MLflow (CI)
    python benchmarks/create.py --previous main       # also the code of main, same rounds
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from _common import (
    ROOT,
    Server,
    bench_env,
    cpu_seconds,
    heading,
    labledger_server,
    loadavg,
    machine,
    reference_server,
    table,
    workdir,
)
from _load import LoadResult, Scenario, loadgen, run_load

from server import REFERENCE, median_result, scenarios

CLIENTS = 8
MLFLOW_CREATE = Scenario(
    "create",
    [
        [
            (
                "POST",
                "/api/2.0/mlflow/runs/create",
                json.dumps(
                    {
                        "experiment_id": "0",
                        "run_name": "bench run",
                        "start_time": 1_764_000_000_000,
                        "tags": [
                            {"key": "mlflow.note.content", "value": "created by create.py"},
                            {"key": "temperature_c", "value": "25.0"},
                        ],
                    }
                ).encode(),
            )
        ]
    ],
)


def find_mlflow(given: Path | None) -> Path | None:
    """The python of a venv with MLflow: ``given``, else the one the tests cache."""
    if given is not None:
        return given
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    found = sorted((cache / "labledger-tests").glob("mlflow-*/bin/python"))
    return found[-1] if found else None


@dataclass
class GroupServer(Server):
    """A server that starts helper processes of its own (MLflow's uvicorn and job runner):
    started in a session of its own, stopped with its whole process group, and its CPU time
    counted over all of its processes."""

    new_session: bool = True

    def start(self, timeout: float = 180.0) -> Server:
        return super().start(timeout)

    def stop(self) -> None:
        if self.process is None:
            return
        proc, self.process = self.process, None
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def group_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and every process of its session (MLflow runs several)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == pid or int(entry.name) == pid:  # its process group
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def mlflow_server(python: Path, workdir: Path) -> GroupServer:
    store = workdir / "mlflow.sqlite3"
    cmd = [
        str(python),
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{store}",
        "--default-artifact-root",
        str(workdir / "mlflow-artifacts"),
        "--host",
        "127.0.0.1",
        "--workers",
        "1",
    ]
    # only the tracking server: no background job runner polling the same database
    env = bench_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    return GroupServer(cmd=cmd, workdir=workdir, env=env)


def previous_source(ref: str, into: Path) -> Path:
    """The ``src`` folder of git revision ``ref`` of this repository, unpacked under ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref, "src"],
        capture_output=True,
        check=True,
    )
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into / "src"


def measure(server: Server, scenario: Scenario, seconds: float, group: bool) -> LoadResult:
    """Load figures plus the server's CPU time per request."""
    cpu = group_cpu_seconds if group else cpu_seconds
    before = cpu(server.pid)
    result = run_load(server.url, scenario, CLIENTS, seconds)
    used = cpu(server.pid) - before
    return replace(result, cpu_us=used / max(1, result.requests) * 1e6)


@dataclass
class Figures:
    """Every round's result of one operation on one server, and the load around each."""

    runs: list[LoadResult]
    loads: list[str]

    @property
    def rps(self) -> float:
        return statistics.median(r.rps for r in self.runs)

    @property
    def merged(self) -> LoadResult:
        return median_result(self.runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s (for CI)")
    parser.add_argument("--seconds", type=float, default=None, help="per measurement")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--mlflow-python", type=Path, default=None, help="python with mlflow")
    parser.add_argument("--previous", default=None, help="also measure this git revision")
    parser.add_argument("--no-mlflow", action="store_true", help="skip the MLflow server")
    args = parser.parse_args()
    seconds = args.seconds or (1.0 if args.quick else 5.0)
    rounds = args.rounds or (1 if args.quick else 3)
    # quick mode (CI) skips MLflow unless asked for: its server alone takes close to a minute
    # to start on a busy machine
    skip = args.no_mlflow or (args.quick and args.mlflow_python is None)
    mlflow = None if skip else find_mlflow(args.mlflow_python)

    heading(f"Creates at {CLIENTS} clients: labledger, the bare floor and MLflow, side by side")
    print(f"machine: {machine()}")
    print(f"load generator: {loadgen()}; {rounds} round(s) of {seconds:g} s per measurement")
    if mlflow is None and not skip:
        print("MLflow not found: pass --mlflow-python (a venv with mlflow 3) for the comparison")

    figures: dict[tuple[str, str], Figures] = {}

    def record(server: str, op: str, result: LoadResult, load: str) -> None:
        entry = figures.setdefault((server, op), Figures([], []))
        entry.runs.append(result)
        entry.loads.append(f"{load} -> {loadavg()}")

    with workdir("create") as tmp:
        sources: dict[str, str | None] = {"labledger": None}
        if args.previous:
            sources["previous"] = str(previous_source(args.previous, tmp / "previous"))
        for round_no in range(rounds):
            order = ["floor", *sources, *(["MLflow"] if mlflow else [])]
            if round_no % 2:
                order.reverse()
            for name in order:
                folder = tmp / f"{name}-{round_no}"
                folder.mkdir()
                if name == "floor":
                    with reference_server(folder / "floor.sqlite3", folder) as ref:
                        run_load(ref.url, REFERENCE, CLIENTS, 1)  # warm-up
                        load = loadavg()
                        record(name, "create", measure(ref, REFERENCE, seconds, False), load)
                elif name == "MLflow":
                    assert mlflow is not None
                    with mlflow_server(mlflow, folder) as ml:
                        run_load(ml.url, MLFLOW_CREATE, CLIENTS, 1)  # warm-up
                        load = loadavg()
                        record(name, "create", measure(ml, MLFLOW_CREATE, seconds, True), load)
                else:
                    server = labledger_server(f"sqlite:///{folder}/labledger.sqlite3", folder)
                    if sources[name] is not None:
                        server.env["PYTHONPATH"] = str(sources[name])
                    with server:
                        for scenario in scenarios(server.url):
                            if scenario.name == "status":
                                continue
                            run_load(server.url, scenario, CLIENTS, 1)  # warm-up
                            load = loadavg()
                            result = measure(server, scenario, seconds, False)
                            record(name, scenario.name, result, load)

    floor = figures[("floor", "create")].rps
    theirs = figures[("MLflow", "create")].rps if ("MLflow", "create") in figures else None
    rows = []
    for (server, op), entry in figures.items():
        merged = entry.merged
        rows.append(
            [
                server,
                op,
                entry.rps,
                merged.p50_ms,
                merged.p99_ms,
                merged.cpu_us,
                entry.rps / floor if op == "create" else float("nan"),
                entry.rps / theirs if theirs and op == "create" else float("nan"),
                merged.errors,
                "; ".join(entry.loads),
            ]
        )
    print()
    print(
        table(
            [
                "server",
                "operation",
                "req/s",
                "p50 ms",
                "p99 ms",
                "server CPU us/req",
                "x floor",
                "x MLflow",
                "errors",
                "load average (1/5/15 min) before -> after each round",
            ],
            rows,
        )
    )
    print(
        "\nx floor / x MLflow: labledger's req/s over theirs in the same run (medians of the "
        "rounds); server CPU: the server's own CPU time per request (all its processes)"
    )
    ours = figures[("labledger", "create")]
    ratio_floor = ours.rps / floor
    p99 = ours.merged.p99_ms
    verdict = [f"{ratio_floor:.2f}x the floor (>= 0.35)", f"p99 {p99:.1f} ms (< 50)"]
    met = ratio_floor >= 0.35 and p99 < 50
    if theirs:
        verdict.insert(0, f"{ours.rps / theirs:.1f}x MLflow (>= 10)")
        met = met and ours.rps / theirs >= 10
    print(f"target create@{CLIENTS}: {', '.join(verdict)}: {'met' if met else 'NOT met'}")
    if args.previous:
        for op in ("create", "get", "list"):
            now, before = figures[("labledger", op)], figures[("previous", op)]
            print(
                f"{op}@{CLIENTS}: {now.rps:,.0f} req/s (p99 {now.merged.p99_ms:.1f} ms, "
                f"{now.merged.cpu_us:,.0f} us CPU) vs previous {before.rps:,.0f} req/s "
                f"(p99 {before.merged.p99_ms:.1f} ms, {before.merged.cpu_us:,.0f} us CPU): "
                f"{now.rps / before.rps:.2f}x"
            )
    if any(row[8] for row in rows):
        print("ERROR: some requests failed (answers of 400 or more, or transport errors)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
