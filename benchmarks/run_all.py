"""Run every benchmark, one after another, and print their figures.

    python benchmarks/run_all.py                     # full sizes (about 20-30 minutes)
    python benchmarks/run_all.py --quick             # tiny sizes, about a minute (CI)
    python benchmarks/run_all.py --only server,scale --save results.md

Each benchmark is a script of its own in this folder (``server.py``, ``create.py``,
``scale.py``, ``queue_claims.py``, ``recorder.py``, ``memory.py``, ``object_store.py``,
``metrics.py`` ...) and can be run alone with the same options.
Exits non-zero when any of them fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    "server",
    "create",
    "scale",
    "queue_claims",
    "recorder",
    "memory",
    "hardening",
    "ui_page",
    "lab_page",
    "object_store",
    "metrics",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    parser.add_argument("--only", default=None, help=f"comma-separated, from {BENCHMARKS}")
    parser.add_argument("--save", type=Path, default=None, help="also write the output here")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else BENCHMARKS
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; expected some of {BENCHMARKS}")

    outputs: list[str] = []
    summary: list[tuple[str, int, float]] = []
    for name in names:
        cmd = [sys.executable, str(HERE / f"{name}.py"), *(["--quick"] if args.quick else [])]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line)
        code = proc.wait()
        summary.append((name, code, time.perf_counter() - started))
        outputs.append("".join(lines))
    print("\n## Summary\n")
    for name, code, seconds in summary:
        print(f"{name:<13} {'ok' if code == 0 else f'FAILED (exit {code})':<16} {seconds:6.1f} s")
    if args.save:
        args.save.write_text("\n".join(outputs))
    return 0 if all(code == 0 for _, code, _ in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
