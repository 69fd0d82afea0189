"""The experiment page with its MADSci lab sections, against the same page with no lab configured.

Starts the real MADSci 0.8.1 managers (the test suite's cached venv and launcher,
``tests/lab/lab_fixtures.py``) and two ``labledger serve`` processes on one SQLite file: one with
the lab configured, one without. One experiment gets N workflows (one step each, run by the real
workcell on simulated instruments) and 10 x N data points (the workflows' plus ones it stores
itself). It times, over one keep-alive loopback connection, one request after another:

    no lab      GET /ui/experiments/{id}   on the server without a lab
    lab         GET /ui/experiments/{id}   on the server in the lab (managers asked in parallel)
    lab (JSON)  GET /experiment/{id}/lab   the whole lab record as JSON

then the lab page again with the Data Manager hanging (SIGSTOP: it accepts connections and never
answers). Answers are cached for ``lab_cache_seconds``; it is set to 0 here, so every request
reads the managers. Prints median and p99 in ms. Figures only; nothing is asserted about time.

    python benchmarks/lab_page.py             # 20 workflows, 200 data points, 30 requests
    python benchmarks/lab_page.py --quick     # 4 workflows, 40 data points, 5 requests
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import sys
import time
from pathlib import Path

import httpx
from _common import bench_env, heading, labledger_server, machine, percentile, table, workdir
from ui_page import timer

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests")]
from lab.lab_fixtures import MadsciLab, lab_venv_python  # noqa: E402

NODES = ("sim1", "sim2", "sim3", "sim4")


def populate(lab: MadsciLab, server_url: str, workflows: int) -> str:
    """An experiment with ``workflows`` one-step workflows and 10 data points per workflow."""
    with httpx.Client(timeout=60) as http:
        exp = http.post(
            f"{server_url}/experiment",
            json={"experiment_design": {"experiment_name": "benchmark"}, "run_name": "lab page"},
        ).json()
        eid = exp["_id"]
        ids = []
        for i in range(workflows):
            node = NODES[i % len(NODES)]
            definition_id = http.post(
                f"{lab.url('workcell')}/workflow_definition",
                json={
                    "name": f"one-{i}",
                    "steps": [
                        {
                            "name": "read",
                            "node": node,
                            "action": "measure",
                            "args": {"sample": f"S{i}"},
                        }
                    ],
                },
            ).json()
            answer = http.post(
                f"{lab.url('workcell')}/workflow",
                data={
                    "workflow_definition_id": definition_id,
                    "ownership_info": json.dumps({"experiment_id": eid}),
                },
            ).json()
            ids.append(answer["workflow_id"])
        for i in range(9 * workflows):
            http.post(
                f"{lab.url('data')}/datapoint",
                data={
                    "datapoint": json.dumps(
                        {
                            "data_type": "json",
                            "label": "reading",
                            "value": {"i": i, "signal": (i * 37 % 101) / 10},
                            "ownership_info": {"experiment_id": eid},
                        }
                    )
                },
            ).raise_for_status()
        deadline = time.monotonic() + 60 + 5 * workflows
        while time.monotonic() < deadline:
            done = [
                http.get(f"{lab.url('workcell')}/workflow/{wid}").json()["status"]["terminal"]
                for wid in ids
            ]
            if all(done):
                return str(eid)
            time.sleep(0.5)
        raise RuntimeError("the workflows did not finish in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 workflows, 5 requests")
    parser.add_argument("--workflows", type=int, default=None)
    parser.add_argument("--requests", type=int, default=None)
    args = parser.parse_args()
    workflows = args.workflows or (4 if args.quick else 20)
    n = args.requests or (5 if args.quick else 30)
    heading(
        f"Experiment page with {workflows} workflows and {10 * workflows} data points "
        "vs no lab (SQLite)"
    )
    print(machine())
    with workdir("lab") as root:
        lab = MadsciLab(root / "lab", lab_venv_python(), NODES)
        lab.build()
        lab.start()
        db = f"sqlite:///{root / 'labledger.sqlite3'}"
        plain = labledger_server(db, root)
        in_lab = labledger_server(db, root)
        in_lab.env = bench_env({**lab.labledger_env(), "EXPERIMENT_LAB_CACHE_SECONDS": "0"})
        try:
            plain.start()
            in_lab.start()
            started = time.monotonic()
            eid = populate(lab, in_lab.url, workflows)
            print(f"populated in {time.monotonic() - started:.1f} s")
            rows = []
            conns = [
                http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
                for server in (plain, in_lab, in_lab)
            ]
            paths = [f"/ui/experiments/{eid}", f"/ui/experiments/{eid}", f"/experiment/{eid}/lab"]
            names = ["no lab", "lab", "lab (JSON record)"]
            runs = [timer(c, p) for c, p in zip(conns, paths, strict=True)]
            for _ in range(2):
                for run in runs:
                    run()
            times: list[list[float]] = [[] for _ in runs]
            for _ in range(n):
                for i, run in enumerate(runs):
                    times[i].append(run() * 1000)
            for name, t in zip(names, times, strict=True):
                t.sort()
                rows.append([name, len(t), f"{percentile(t, 50):.1f}", f"{percentile(t, 99):.1f}"])
            data = lab.processes["data"].process
            assert data is not None
            os.kill(data.pid, signal.SIGSTOP)
            try:
                hung = [runs[1]() * 1000 for _ in range(max(3, n // 5))]
            finally:
                os.kill(data.pid, signal.SIGCONT)
            hung.sort()
            rows.append(
                [
                    "lab, Data Manager hanging",
                    len(hung),
                    f"{percentile(hung, 50):.1f}",
                    f"{percentile(hung, 99):.1f}",
                ]
            )
            for conn in conns:
                conn.close()
            print(table(["page", "requests", "median ms", "p99 ms"], rows))
            print(
                f"lab page / no-lab page (median): "
                f"{percentile(times[1], 50) / percentile(times[0], 50):.1f}x"
            )
        finally:
            plain.stop()
            in_lab.stop()
            lab.stop()


if __name__ == "__main__":
    main()
