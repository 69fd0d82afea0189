"""Metric charts on the experiment and compare pages (server-rendered SVG), and the curve chart."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from labledger.server.ui.curves import PALETTE, Curve, curve_chart
from server.ui_support import log_points, start


def _log(api: TestClient, exp_id: str, name: str, values: list[float]) -> None:
    log_points(api, exp_id, [{"name": name, "value": v, "step": i} for i, v in enumerate(values)])


def _figures(html: str) -> dict[str, str]:
    found = re.findall(
        r'<figure class="chart-box metric" data-metric="([^"]+)">(.*?)</figure>', html, re.S
    )
    return dict(found)


def test_experiment_page_draws_a_chart_per_series(sqlite_api: TestClient) -> None:
    exp = start(sqlite_api, "Training", run_name="resnet")
    _log(sqlite_api, exp["_id"], "loss", [1.0 / (i + 1) for i in range(2000)])
    _log(sqlite_api, exp["_id"], "accuracy", [0.5, 0.7, 0.9])
    page = sqlite_api.get(f"/ui/experiments/{exp['_id']}")
    assert page.status_code == 200
    figures = _figures(page.text)
    assert list(figures) == ["accuracy", "loss"]
    loss = figures["loss"]
    assert 'role="img"' in loss and "<title" in loss and "loss of resnet" in loss
    assert "last 0.0005, lowest 0.0005, highest 1" in loss  # the text alternative
    # a long series is drawn downsampled, its first and last point kept
    polyline = re.search(r'<polyline points="([^"]+)"', loss)
    assert polyline is not None and len(polyline.group(1).split()) <= 600
    assert 'class="tick"' in loss and ">step<" in loss
    assert page.text.index('id="metrics-h"') < page.text.index('id="results-h"')
    # the fragment the page swaps in while the experiment runs
    fragment = sqlite_api.get(f"/ui/experiments/{exp['_id']}/metrics.html")
    assert fragment.status_code == 200 and list(_figures(fragment.text)) == ["accuracy", "loss"]


def test_experiment_page_without_metrics_says_so(sqlite_api: TestClient) -> None:
    exp = start(sqlite_api)
    page = sqlite_api.get(f"/ui/experiments/{exp['_id']}")
    assert "No metric series yet." in page.text


def test_compare_page_overlays_one_curve_per_run_with_a_legend(sqlite_api: TestClient) -> None:
    runs: list[dict[str, Any]] = [
        start(sqlite_api, "Training", run_name=f"lr={lr}", parameters={"lr": lr})
        for lr in (0.1, 0.01, 0.001)
    ]
    for k, run in enumerate(runs):
        _log(sqlite_api, run["_id"], "loss", [1.0 / (i + 1 + k) for i in range(50)])
    _log(sqlite_api, runs[0]["_id"], "grad_norm", [3.0, 2.0])
    ids = ",".join(r["_id"] for r in runs)
    page = sqlite_api.get("/ui/compare", params={"ids": ids})
    assert page.status_code == 200
    figures = _figures(page.text)
    assert list(figures) == ["grad_norm", "loss"]
    loss = figures["loss"]
    assert loss.count('<g class="curve"') == 3
    legend = re.search(r'<g class="legend">(.*?)</g>', loss, re.S)
    assert legend is not None
    assert [t for t in re.findall(r">([^<]+)</text>", legend.group(1))] == [
        "lr=0.1",
        "lr=0.01",
        "lr=0.001",
    ]
    # a run keeps its colour in every chart, also where other runs have no such series
    assert f'stroke="{PALETTE[0]}"' in figures["grad_norm"]
    assert figures["grad_norm"].count('<g class="curve"') == 1


def test_compare_takes_up_to_fifty_runs(sqlite_api: TestClient) -> None:
    ids = [start(sqlite_api, f"run {i}")["_id"] for i in range(51)]
    assert sqlite_api.get("/ui/compare", params={"ids": ",".join(ids[:50])}).status_code == 200
    refused = sqlite_api.get("/experiments/compare", params={"ids": ",".join(ids)})
    assert refused.status_code == 422 and "at most 50" in refused.json()["detail"]


def test_curve_chart_is_readable_without_colour() -> None:
    curves = [Curve(f"run {i}", [(0, float(i)), (10, float(i) + 1)]) for i in range(10)]
    svg = curve_chart("loss by step", curves, y_label="loss")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count('<g class="curve"') == 10
    # beyond the palette, curves are told apart by dashes too
    assert svg.count("stroke-dasharray") >= 2 * 2
    assert "run 9: 2 points, last 10" in svg
    empty = curve_chart("nothing", [Curve("a", [])])
    assert "No points yet" in empty and "no points" in empty


def test_experiments_table_takes_chosen_columns_filters_and_sorts_on_them(
    sqlite_api: TestClient,
) -> None:
    for lr, loss, acc in ((0.1, 0.05, 0.91), (0.01, 0.2, 0.85), (0.001, 0.08, 0.97)):
        exp = start(sqlite_api, "Training", run_name=f"lr={lr}", parameters={"lr": lr})
        _log(sqlite_api, exp["_id"], "loss", [1.0, loss])
        added = sqlite_api.post(f"/experiment/{exp['_id']}/results", json={"values": {"acc": acc}})
        assert added.status_code == 200
    params = {
        "columns": "parameters.lr, metrics.loss, results.acc",
        "where": "metrics.loss<0.1",
        "sort": "-results.acc",
    }
    page = sqlite_api.get("/ui/experiments", params=params)
    assert page.status_code == 200, page.text
    runs = re.findall(r"<td>(lr=[0-9.]+)</td>", page.text)
    assert runs == ["lr=0.001", "lr=0.1"]
    cells = re.findall(r'<td class="field-cell" data-column="([^"]+)">([^<]*)</td>', page.text)
    assert cells[:3] == [
        ("parameters.lr", "0.001"),
        ("metrics.loss", "0.08"),
        ("results.acc", "0.97"),
    ]
    header = re.search(
        r'<th scope="col" class="field-col" aria-sort="descending"><a href="([^"]+)">results.acc',
        page.text,
    )
    assert header is not None  # the sorted column says so, and its link flips the order
    assert "sort=results.acc" in header.group(1) and "columns=" in header.group(1)
    # the JSON twin carries the same conditions
    assert "where=metrics.loss%3C0.1" in page.text
    bad = sqlite_api.get("/ui/experiments", params={"where": "loss<0.1"})
    assert bad.status_code == 422 and "expected FIELD OP VALUE" in bad.text
    bad = sqlite_api.get("/ui/experiments", params={"columns": "lr"})
    assert bad.status_code == 422 and "columns: expected results.&lt;name&gt;" in bad.text


def test_compare_page_draws_parallel_coordinates_and_a_grouped_scatter(
    sqlite_api: TestClient,
) -> None:
    ids = []
    for opt in ("adam", "sgd"):
        for lr in (0.1, 0.01, 0.001):
            exp = start(
                sqlite_api, "Sweep", run_name=f"{opt} {lr}", parameters={"lr": lr, "opt": opt}
            )
            _log(sqlite_api, exp["_id"], "loss", [1.0, lr * (2 if opt == "sgd" else 1)])
            ids.append(exp["_id"])
    page = sqlite_api.get("/ui/compare", params={"ids": ",".join(ids)})
    assert page.status_code == 200, page.text
    parallel = re.search(r'<figure class="chart-box" id="parallel">(.*?)</figure>', page.text, re.S)
    assert parallel is not None
    svg = parallel.group(1)
    assert 'role="img"' in svg and svg.count('<g class="run"') == 6
    axes = re.findall(r'<g class="axis" data-axis="([^"]+)">', svg)
    assert axes == ["parameters.lr", "parameters.opt", "metrics.loss"]
    assert "metrics.loss from 0.001 to 0.2" in svg  # the text alternative, rounded
    # default scatter: the swept number on x, the first metric on y, coloured by the category
    scatter = re.search(r'<figure class="chart-box" id="scatter">(.*?)</figure>', page.text, re.S)
    assert scatter is not None
    dots = scatter.group(1)
    assert "metrics.loss against parameters.lr" in dots
    groups = re.findall(r'<g class="group" data-group="([^"]+)">(.*?)</g>', dots, re.S)
    assert [g for g, _ in groups] == ["adam", "sgd"]
    for _, body in groups:  # one line per group, never one joining both
        assert body.count("<polyline") == 1 and body.count('class="point"') == 3
    assert '<mark class="differs">parameters.lr</mark>' in page.text
    chosen = sqlite_api.get(
        "/ui/compare", params={"ids": ",".join(ids), "x": "metrics.loss", "y": "parameters.lr"}
    )
    assert "parameters.lr against metrics.loss" in chosen.text
    bad = sqlite_api.get("/ui/compare", params={"ids": ",".join(ids), "x": "nope"})
    assert bad.status_code == 422 and "x: expected one of" in bad.text


def test_campaign_page_draws_parallel_coordinates_and_a_grouped_scatter(
    sqlite_api: TestClient,
) -> None:
    created = sqlite_api.post("/campaign", json={"campaign_name": "Two-factor sweep"})
    campaign_id = created.json()["campaign_id"]
    for opt in ("adam", "sgd"):
        for lr in (0.1, 0.01, 0.001):
            exp = start(
                sqlite_api,
                "Sweep",
                run_name=f"{opt} {lr}",
                campaign_id=campaign_id,
                parameters={"lr": lr, "opt": opt},
            )
            _log(sqlite_api, exp["_id"], "loss", [1.0, lr * (3 if opt == "sgd" else 1) / 7])
    page = sqlite_api.get(f"/ui/campaigns/{campaign_id}")
    assert page.status_code == 200, page.text
    parallel = re.search(r'<figure class="chart-box" id="parallel">(.*?)</figure>', page.text, re.S)
    assert parallel is not None and parallel.group(1).count('<g class="run"') == 6
    axes = re.findall(r'<g class="axis" data-axis="([^"]+)">', parallel.group(1))
    assert axes == ["parameters.lr", "parameters.opt", "metrics.loss"]
    # numbers rounded for reading: 0.3 / 7 = 0.042857142...
    assert "0.04286" in parallel.group(1) and "0.0428571" not in parallel.group(1)
    # default axes: the swept number, the first metric; coloured by the other swept parameter,
    # one line per group (no zigzag joining points of both groups)
    scatter = re.search(r'<figure class="chart-box" id="scatter">(.*?)</figure>', page.text, re.S)
    assert scatter is not None and "metrics.loss against parameters.lr" in scatter.group(1)
    groups = re.findall(r'<g class="group" data-group="([^"]+)">(.*?)</g>', scatter.group(1), re.S)
    assert [g for g, _ in groups] == ["adam", "sgd"]
    assert all(body.count("<polyline") == 1 for _, body in groups)
    # the scatter's axes are chosen in the page without touching the results chart's x/y
    chosen = sqlite_api.get(
        f"/ui/campaigns/{campaign_id}",
        params={"scatter_x": "metrics.loss", "scatter_y": "parameters.lr", "color": ""},
    )
    assert "parameters.lr against metrics.loss" in chosen.text
    assert 'name="scatter_x"' in chosen.text and 'name="x" id="plot-x"' in chosen.text
    bad = sqlite_api.get(f"/ui/campaigns/{campaign_id}", params={"scatter_y": "nope"})
    assert bad.status_code == 422 and "scatter_y: expected one of" in bad.text
