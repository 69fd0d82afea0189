"""The benchmarks keep working: each script's quick mode runs and prints its figures.

Speed is not checked here (figures on a shared CI machine mean little); only that every
benchmark runs to the end against the real server, databases and recorder, and prints the
figures it is for.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from labledger_fixtures import PG_BINDIR, strict

pytestmark = pytest.mark.slow

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
NUMBER = r"[\d,]+(\.\d+)?"

#: script -> patterns its output must hold
EXPECTED: dict[str, list[str]] = {
    "server": [
        rf"\| reference INSERT \| 8 +\| {NUMBER} ",
        # req/s, p50, p99, x reference, CPU per request, x reference (CPU), then 0 errors
        rf"\| labledger create +\| 8 +(\| {NUMBER} +){{6}}\| 0 +\|",
        r"\| labledger get ",
        r"\| labledger list ",
        r"\| labledger status ",
        r"target create@8: .* -> [\d.]+x",
    ],
    "create": [
        # req/s, p50, p99, CPU per request, x floor, then x MLflow (none in quick mode), 0 errors
        rf"\| floor +\| create +(\| {NUMBER} +){{5}}\| - +\| 0 +\|",
        rf"\| labledger \| create +(\| {NUMBER} +){{5}}\| - +\| 0 +\|",
        r"\| labledger \| get ",
        r"\| labledger \| list ",
        r"target create@8: [\d.]+x the floor \(>= 0.35\), p99 [\d.]+ ms",
    ],
    "scale": [
        rf"\| sqlite +\| 3,000 +\| latest 10 +\| store \| {NUMBER}",
        rf"\| sqlite +\| 3,000 +\| campaign +\| http +\| {NUMBER}",
        r"\| sqlite +\| 3,000 +\| status=in_progress,paused +\| http",
        rf"\| sqlite +\| 3,000 +\| text=#N \(one run\) +\| http +\| {NUMBER}",
        rf"\| sqlite +\| 3,000 +\| count, no filter +\| http +\| {NUMBER}",
        rf"\| sqlite +\| 3,000 +\| campaign of 10,000, all ids +\| http +\| {NUMBER}",
        r"sqlite: load average before timing [\d.]+ ",
        r"slowest at 3,000: ",
    ],
    "queue_claims": [
        rf"\| sqlite +\| claim +\| 100 +\| {NUMBER} ",
        r"no experiment was claimed twice",
    ],
    "recorder": [
        rf"\| archive_tree, first archive +\| {NUMBER}",
        r"\| archive_tree, unchanged again .*\| 0 +\|",
        rf"\| labledger --help +\| {NUMBER}",
        rf"\| labledger list +\| {NUMBER}",
        rf"\| archive_tree, large files +\| {NUMBER}",
        rf"\| labledger new +\| {NUMBER}",
        rf"\| labledger run, over its scripts' [\d,]+ ms +\| {NUMBER}",
        r"labledger end < 150 ms: ",
    ],
    "memory": [r"after [\d,]+ requests: \d+ MiB", r"\| warm \(first chunk\) \|"],
    "ui_page": [
        rf"\| first page +\| {NUMBER} / {NUMBER} +\| {NUMBER} / {NUMBER}",
        rf"\| page 20 +\| {NUMBER} / {NUMBER} ",
    ],
    "lab_page": [
        rf"\| no lab +\| 5 +\| {NUMBER} +\| {NUMBER}",
        rf"\| lab +\| 5 +\| {NUMBER} +\| {NUMBER}",
        rf"\| lab, Data Manager hanging \| \d+ +\| {NUMBER}",
    ],
    "object_store": [
        rf"\| upload +\| {NUMBER} +\| {NUMBER} +\| {NUMBER}x +\| {NUMBER} ",
        rf"\| download +\| {NUMBER} +\| {NUMBER} +\| {NUMBER}x +\| {NUMBER} ",
        r"server RSS idle \d+ MiB, peak \d+ MiB",
    ],
    "metrics": [
        rf"\| labledger POST /experiment/\{{id\}}/metrics \| 20,000 \| {NUMBER} ",
        rf"\| 50,000 \| {NUMBER} +\| {NUMBER} ",
        rf"\| 2,000 +\| {NUMBER} +\| {NUMBER} +\| {NUMBER} +\| {NUMBER} ",
        rf"\| 4 +\| 5 +\| 1,000 +\| {NUMBER} +\| {NUMBER} ",
    ],
    "hardening": [
        rf"\| create \+ Idempotency-Key \| {NUMBER} +\| {NUMBER} ",
        rf"\| list \(Bearer token\) +\| {NUMBER} ",
        r"[1-9][\d,]* of them answered 401",
    ],
}


def _postgres_expected(name: str) -> list[str]:
    if not (PG_BINDIR / "initdb").exists():
        if strict():
            pytest.fail(f"PostgreSQL 15 binaries not found in {PG_BINDIR}")
        return []
    return {
        "scale": [rf"\| postgresql \| 3,000 +\| owner +\| http +\| {NUMBER}"],
        "queue_claims": [rf"\| postgresql \| claim +\| 100 +\| {NUMBER} "],
    }.get(name, [])


def _params() -> list[object]:
    # the lab benchmark builds the MADSci managers' venv on first use (minutes, once)
    return [
        pytest.param(name, marks=pytest.mark.timeout(1800)) if name == "lab_page" else name
        for name in EXPECTED
    ]


@pytest.mark.parametrize("name", _params())
def test_quick_mode_runs_and_prints_its_figures(name: str) -> None:
    if name == "lab_page":
        from lab.lab_fixtures import lab_venv_python

        lab_venv_python()  # built here, under its lock, not within the script's time limit
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_")}
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), "--quick"],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    for pattern in EXPECTED[name] + _postgres_expected(name):
        assert re.search(pattern, output), f"{pattern!r} not in:\n{output}"


def test_the_recorder_commands_are_timed_beside_a_reference_version_of_the_code() -> None:
    # this code's own src stands for the reference: the plumbing is what is checked
    src = BENCHMARKS.parent / "src"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "recorder.py"),
            "--quick",
            "--startup-only",
            "--reference-src",
            str(src),
        ],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_")},
        timeout=240,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    for pattern in (
        rf"\| labledger new +\| {NUMBER}",
        rf"\| labledger new \[reference\] +\| {NUMBER}",
        rf"\| labledger list \[reference\] +\| {NUMBER}",
        rf"\| labledger run \[reference\], over its scripts' [\d,]+ ms +\| {NUMBER}",
        r"labledger run < 150 ms: ",
    ):
        assert re.search(pattern, output), f"{pattern!r} not in:\n{output}"
