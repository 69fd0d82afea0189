"""Recorder runs measure: $LABLEDGER_METRICS followed live, result files read at the end, and
both shown, queried, sorted and pushed. Real scripts, the real CLI, a real server."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w

from labledger.client import ExperimentClient
from labledger_fixtures import LiveServerFactory
from runner.recorder_support import (
    labledger,
    labledger_json,
    make_experiment,
    start_labledger,
    wait_for,
)

RUN = """\
mkdir -p results
for step in 0 1 2 3 4; do
  awk -v lr="$lr" -v s="$step" \\
    'BEGIN { printf "{\\"loss\\": %g, \\"step\\": %d}\\n", lr * (5 - s), s }' \\
    >> "$LABLEDGER_METRICS"
done
echo '{"accuracy": 0.5}' >> "$LABLEDGER_METRICS"
echo '{"accuracy": NaN}' >> "$LABLEDGER_METRICS"
echo 'not json' >> "$LABLEDGER_METRICS"
echo "{\\"accuracy\\": $accuracy}" >> "$LABLEDGER_METRICS"
echo "{\\"val\\": {\\"acc\\": $accuracy, \\"f1\\": 0.7}, \\"note\\": \\"ok\\"}" > results/final.json
printf 'epochs,best_epoch\\n5,3\\n' > results/summary.csv
if [ -n "$wait_for" ]; then while [ ! -e "$wait_for" ]; do sleep 0.05; done; fi
"""


def _configure(exp: Path, lr: float, accuracy: float, wait: str = "") -> None:
    """Set run.toml's variables and result files (as a user editing it would)."""
    config = tomllib.loads((exp / "run.toml").read_text())
    config["variables"] = {"lr": lr, "accuracy": accuracy, "wait_for": wait}
    config["results"] = ["results/final.json", "results/summary.csv"]
    (exp / "run.toml").write_text(tomli_w.dumps(config))


def _run(exp: Path, lr: float, accuracy: float) -> dict[str, Any]:
    created: dict[str, Any] = labledger_json(exp, "new", "--name", f"lr={lr}")
    _configure(exp, lr, accuracy)
    labledger(exp, "run")
    labledger(exp, "end", "--observations", "done")
    return created


def test_a_run_keeps_its_metric_series_and_result_files(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", run=RUN)
    created = _run(exp, 0.1, 0.8)
    shown = labledger_json(exp, "show", created["run_id"])
    assert shown["results"] == {
        "val.acc": 0.8,
        "val.f1": 0.7,
        "note": "ok",
        "epochs": 5,
        "best_epoch": 3,
    }
    loss = shown["metrics"]["loss"]
    assert (loss["count"], loss["last_step"], loss["last"], loss["max"]) == (5, 4, 0.1, 0.5)
    assert shown["metrics"]["accuracy"]["last"] == 0.8
    assert shown["metrics"]["accuracy"]["count"] == 2
    notes = [e["data"].get("note", "") for e in shown["events"]]
    assert any("2 metric values" in n for n in notes), notes  # NaN and the bad line, said
    printed = labledger(exp, "show", created["run_id"]).stdout
    assert "val.acc=0.8" in printed and "loss" in printed
    series = labledger_json(exp, "metrics", created["run_id"], "loss")
    assert [(p["step"], p["value"]) for p in series] == [
        (0, 0.5),
        (1, 0.4),
        (2, 0.3),
        (3, 0.2),
        (4, 0.1),
    ]
    plotted = labledger(exp, "metrics", created["run_id"], "loss").stdout
    assert "loss of run 1 (5 points, last 0.1)" in plotted and "█" in plotted


def test_list_filters_and_sorts_on_results_and_metrics(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", run=RUN)
    for lr, accuracy in ((0.1, 0.8), (0.01, 0.9), (0.05, 0.7)):
        _run(exp, lr, accuracy)
    rows = labledger_json(exp, "list", "--where", "loss<0.06", "--sort", "-accuracy")
    assert [r["name"] for r in rows] == ["lr=0.01", "lr=0.05"]
    assert rows[0]["metrics"]["loss"] == 0.01 and rows[0]["results"]["val.acc"] == 0.9
    ordered = labledger_json(exp, "list", "--sort", "val.acc")
    assert [r["name"] for r in ordered] == ["lr=0.05", "lr=0.1", "lr=0.01"]
    printed = labledger(exp, "list", "--where", "val.acc>=0.8").stdout
    assert "lr=0.1" in printed and "lr=0.01" in printed and "lr=0.05" not in printed


def test_metrics_are_followed_while_the_run_is_going(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", run=RUN)
    labledger_json(exp, "new", "--name", "live")
    gate = tmp_path / "go"
    _configure(exp, 0.1, 0.8, str(gate))
    running = start_labledger(exp, "run")
    try:
        wait_for(exp / "results" / "summary.csv")  # the script is now waiting for the gate
        live = labledger_json(exp, "metrics")
        assert [p[1] for p in live["loss"]] == [0.5, 0.4, 0.3, 0.2, 0.1]
    finally:
        gate.touch()
        running.communicate(timeout=60)
    assert running.returncode == 0


def test_push_sends_results_and_series(tmp_path: Path, live_server: LiveServerFactory) -> None:
    exp = make_experiment(tmp_path / "exp", run=RUN)
    created = _run(exp, 0.1, 0.8)
    server = live_server()
    for _ in range(2):  # a repeat changes nothing
        labledger(exp, "push", "--server", server.url)
    with ExperimentClient(server.url) as client:
        results = {r.name: r.value for r in client.get_results(created["run_id"])}
        assert results["val.acc"] == 0.8 and results["best_epoch"] == 3
        series = {s["name"]: s for s in client.list_metrics(created["run_id"])}
        assert series["loss"]["count"] == 5 and series["loss"]["last_value"] == 0.1
        found = client.http.get("/experiments", params={"where": "metrics.loss<0.2"}).json()
        assert [e["_id"] for e in found] == [created["run_id"]]


def test_compare_shows_results_and_metrics_side_by_side(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", run=RUN)
    _run(exp, 0.1, 0.8)
    _run(exp, 0.01, 0.9)
    report = labledger_json(exp, "compare", "1", "2")
    assert report["outcomes"]["val.acc"] == {"a": 0.8, "b": 0.9}
    assert report["outcomes"]["metric loss"] == {"a": 0.1, "b": 0.01}
    assert report["outcomes"]["epochs"] == {"a": 5, "b": 5}
    printed = labledger(exp, "compare", "1", "2").stdout
    assert "val.acc: 0.8 | 0.9   (differs)" in printed and "epochs: 5 | 5\n" in printed
