"""The SVG charts: valid XML, accessible names, one mark per datum, readable axes."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from labledger.core.lifecycle import TRANSITIONS, ExperimentStatus
from labledger.core.models import Event, EventType, Experiment
from labledger.server.ui.charts import (
    Bar,
    Point,
    Span,
    bar_chart,
    nice_ticks,
    scatter_chart,
    timeline_chart,
)
from labledger.server.ui.views import allowed_actions, status_spans, timeline_end
from server.ui_support import act, start, sweep

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.find(f"{SVG}title") is not None and root.find(f"{SVG}desc") is not None
    return root


def marks(root: ET.Element, css_class: str) -> list[ET.Element]:
    return [el for el in root.iter() if el.get("class") == css_class]


@given(
    st.floats(-1e9, 1e9, allow_nan=False),
    st.floats(-1e9, 1e9, allow_nan=False),
)
def test_nice_ticks_cover_the_range_with_even_steps(low: float, high: float) -> None:
    ticks = nice_ticks(low, high)
    assert ticks[0] <= min(low, high) and ticks[-1] >= max(low, high) - 1e-9 * abs(high)
    steps = [b - a for a, b in itertools.pairwise(ticks)]
    assert all(step == pytest.approx(steps[0], rel=1e-6) for step in steps)
    assert 2 <= len(ticks) <= 12


def test_bar_chart_draws_one_labelled_bar_per_value() -> None:
    root = parse(
        bar_chart(
            "By status", [Bar("completed", 5), Bar("failed <x>", 2)], x_label="status", y_label="n"
        )
    )
    bars = marks(root, "bar")
    assert [(b.get("data-label"), b.get("data-value")) for b in bars] == [
        ("completed", "5"),
        ("failed <x>", "2"),
    ]
    assert float(bars[0].get("height") or 0) == pytest.approx(
        2.5 * float(bars[1].get("height") or 0), abs=0.2
    )
    ticks = [t.text for t in marks(root, "tick")]
    assert "0" in ticks and "completed" in ticks
    assert [t.text for t in marks(root, "axis-label")] == ["n", "status"]


def test_empty_charts_say_so() -> None:
    for svg in (
        bar_chart("t", [], x_label="x", y_label="y"),
        scatter_chart("t", [], x_label="x", y_label="y"),
        timeline_chart("t", [], now=datetime.now(UTC)),
    ):
        root = parse(svg)
        assert marks(root, "empty")


def test_scatter_chart_places_points_in_order_and_links_them() -> None:
    points = [
        Point(80, 40.0, "hot", "/ui/experiments/b"),
        Point(20, 10.0, "cold", "/ui/experiments/a"),
    ]
    root = parse(scatter_chart("Yield", points, x_label="T", y_label="yield", line=True))
    circles = marks(root, "point")
    assert [c.get("data-x") for c in circles] == ["20", "80"]
    xs = [float(c.get("cx") or 0) for c in circles]
    ys = [float(c.get("cy") or 0) for c in circles]
    assert xs[0] < xs[1] and ys[0] > ys[1]  # higher yield is drawn higher up
    assert len(marks(root, "series")) == 1
    links = [a.get("href") for a in root.iter(f"{SVG}a")]
    assert links == ["/ui/experiments/a", "/ui/experiments/b"]


def test_scatter_chart_takes_categories() -> None:
    points = [Point("water", 1.0), Point("ethanol", 2.0), Point("water", 3.0)]
    root = parse(scatter_chart("by solvent", points, x_label="solvent", y_label="y"))
    assert [t.text for t in marks(root, "tick")][-2:] == ["water", "ethanol"]
    assert len(marks(root, "point")) == 3


def test_timeline_has_a_lane_per_state_and_a_span_per_period() -> None:
    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    events = [
        Event(type=EventType.CREATED, to_status="in_progress", at=t0),
        Event(
            type=EventType.STATUS_CHANGED,
            from_status="in_progress",
            to_status="paused",
            at=t0 + timedelta(minutes=5),
        ),
        Event(type=EventType.UPDATED, at=t0 + timedelta(minutes=6)),
        Event(
            type=EventType.STATUS_CHANGED,
            from_status="paused",
            to_status="in_progress",
            at=t0 + timedelta(minutes=9),
        ),
    ]
    spans = status_spans(events)
    assert spans == [
        Span("in_progress", t0, t0 + timedelta(minutes=5)),
        Span("paused", t0 + timedelta(minutes=5), t0 + timedelta(minutes=9)),
        Span("in_progress", t0 + timedelta(minutes=9)),
    ]
    root = parse(timeline_chart("t", spans, now=t0 + timedelta(minutes=10)))
    assert [el.get("data-state") for el in marks(root, "span")] == [
        "in_progress",
        "paused",
        "in_progress",
    ]
    assert [el.text for el in marks(root, "lane-label")] == ["in_progress", "paused"]
    assert "12:00" in [t.text for t in marks(root, "tick")]


@pytest.mark.parametrize("status", list(ExperimentStatus), ids=lambda s: s.value)
def test_buttons_follow_the_transition_table(status: ExperimentStatus) -> None:
    exp = Experiment(status=status, started_at=datetime.now(UTC))
    allowed = allowed_actions(exp)
    assert allowed["pause"] == (ExperimentStatus.PAUSED in TRANSITIONS[status])
    assert allowed["cancel"] == (ExperimentStatus.CANCELLED in TRANSITIONS[status])
    assert allowed["end"] == (ExperimentStatus.COMPLETED in TRANSITIONS[status])


def test_campaign_status_chart_has_one_bar_per_status_present(sqlite_api: TestClient) -> None:
    campaign_id, ids = sweep(sqlite_api, [10, 20, 30, 40])
    act(sqlite_api, ids[0], "end")
    act(sqlite_api, ids[1], "end")
    act(sqlite_api, ids[2], "pause")
    response = sqlite_api.get(f"/ui/campaigns/{campaign_id}/status.svg")
    assert response.headers["content-type"].startswith("image/svg+xml")
    bars = marks(parse(response.text), "bar")
    counts = sqlite_api.get(f"/experiments/status-counts?campaign_id={campaign_id}").json()[
        "counts"
    ]
    present = {s: n for s, n in counts.items() if n}
    assert {b.get("data-label"): int(b.get("data-value") or 0) for b in bars} == present
    assert len(bars) == 3


def test_campaign_results_chart_plots_the_chosen_parameter(sqlite_api: TestClient) -> None:
    campaign_id, _ = sweep(sqlite_api, [10, 30, 20])
    url = f"/ui/campaigns/{campaign_id}/results.svg?x=parameters.temperature&y=results.yield"
    root = parse(sqlite_api.get(url).text)
    points = marks(root, "point")
    assert sorted((p.get("data-x"), p.get("data-y")) for p in points) == [
        ("10", "5"),
        ("20", "10"),
        ("30", "15"),
    ]
    assert "temperature" in [t.text for t in marks(root, "axis-label")]


def test_a_finished_experiments_timeline_stops_at_its_end() -> None:
    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    ended = t0 + timedelta(minutes=10)
    done = Experiment(status=ExperimentStatus.COMPLETED, started_at=t0, ended_at=ended)
    running = Experiment(status=ExperimentStatus.IN_PROGRESS, started_at=t0)
    later = t0 + timedelta(days=30)
    assert timeline_end(done, later) == ended
    assert timeline_end(running, later) == later
    spans = [Span("in_progress", t0, ended), Span("completed", ended)]
    root = parse(timeline_chart("t", spans, now=timeline_end(done, later)))
    running_bar, done_mark = marks(root, "span")
    # the run fills the axis; the final state is a small mark, not a bar growing with time
    assert float(running_bar.get("width") or 0) > 20 * float(done_mark.get("width") or 0)


def test_campaign_results_chart_never_joins_points_of_different_groups(
    sqlite_api: TestClient,
) -> None:
    # a two-factor sweep: temperature (the x axis) by solvent; a line per solvent
    campaign = sqlite_api.post("/campaign", json={"campaign_name": "Two factors"}).json()
    for solvent, gain in (("water", 1.0), ("ethanol", 2.0)):
        for temperature in (10, 20, 30):
            exp = start(
                sqlite_api,
                "Coupling",
                campaign_id=campaign["campaign_id"],
                parameters={"temperature": temperature, "solvent": solvent},
            )
            added = sqlite_api.post(
                f"/experiment/{exp['_id']}/results",
                json={"values": {"yield": gain * temperature}},
            )
            assert added.status_code in (200, 201), added.text
    url = f"/ui/campaigns/{campaign['campaign_id']}/results.svg?x=parameters.temperature"
    root = parse(sqlite_api.get(url).text)
    group_of = {
        (p.get("cx", ""), p.get("cy", "")): p.get("data-group", "") for p in marks(root, "point")
    }
    assert sorted(set(group_of.values())) == ["solvent=ethanol", "solvent=water"]
    lines = marks(root, "series")
    assert len(lines) == 2
    for polyline in lines:
        vertices = [
            (x, y) for x, y in (v.split(",") for v in (polyline.get("points") or "").split())
        ]
        assert len(vertices) == 3
        # every vertex is a point of the line's own group
        assert {group_of[v] for v in vertices} == {polyline.get("data-group")}
    # the groups are told apart in words too, not by colour alone
    legend = [t.text for g in root.iter() if g.get("class") == "legend" for t in g.iter()]
    assert "solvent=water" in legend and "solvent=ethanol" in legend


def test_scatter_chart_joins_each_group_apart() -> None:
    points = [
        Point(x, y, group=group)
        for group, ys in (("a", (1, 5, 2)), ("b", (4, 0, 3)))
        for x, y in zip((1, 2, 3), ys, strict=True)
    ]
    root = parse(scatter_chart("t", points, x_label="x", y_label="y", line=True))
    lines = marks(root, "series")
    assert [line.get("data-group") for line in lines] == ["a", "b"]
    assert all(len((line.get("points") or "").split()) == 3 for line in lines)
    one_group = parse(
        scatter_chart("t", [Point(1, 1), Point(2, 2)], x_label="x", y_label="y", line=True)
    )
    assert len(marks(one_group, "series")) == 1 and not marks(one_group, "legend")
