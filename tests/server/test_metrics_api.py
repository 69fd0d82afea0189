"""Metric series over HTTP on SQLite and PostgreSQL: batches, retries, summaries, downsampling."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from labledger.core.metrics import bucket_plan

DESIGN = {"experiment_design": {"experiment_name": "training"}}


def _experiment(api: TestClient) -> str:
    exp_id: str = api.post("/experiment", json=DESIGN).json()["_id"]
    return exp_id


def _post(api: TestClient, exp_id: str, points: list[dict[str, Any]], **kw: Any) -> Any:
    return api.post(f"/experiment/{exp_id}/metrics", json={"metrics": points}, **kw)


def _series(api: TestClient, exp_id: str) -> dict[str, dict[str, Any]]:
    answer = api.get(f"/experiment/{exp_id}/metrics")
    assert answer.status_code == 200
    return {s["name"]: s for s in answer.json()}


def test_batch_makes_series_with_count_last_min_and_max(api: TestClient) -> None:
    exp_id = _experiment(api)
    answer = _post(
        api,
        exp_id,
        [
            {"name": "loss", "value": 0.9, "step": 0},
            {"name": "loss", "value": 0.4, "step": 1},
            {"name": "loss", "value": 0.6, "step": 2, "timestamp": "2026-01-01T00:00:00Z"},
            {"name": "accuracy", "value": 0.5},
            {"name": "accuracy", "value": 0.7},
        ],
    )
    assert answer.status_code == 200
    assert answer.json() == {"experiment_id": exp_id, "accepted": 5}
    series = _series(api, exp_id)
    assert list(series) == ["accuracy", "loss"]
    loss = series["loss"]
    assert (loss["count"], loss["first_step"], loss["last_step"]) == (3, 0, 2)
    assert (loss["last_value"], loss["min_value"], loss["max_value"]) == (0.6, 0.4, 0.9)
    assert loss["last_timestamp"].startswith("2026-01-01T00:00:00")
    # points without a step follow the series' last step
    accuracy = series["accuracy"]
    assert (accuracy["first_step"], accuracy["last_step"], accuracy["last_value"]) == (0, 1, 0.7)
    _post(api, exp_id, [{"name": "accuracy", "value": 0.8}])
    assert _series(api, exp_id)["accuracy"]["last_step"] == 2


def test_retried_batch_changes_nothing_and_a_replaced_step_updates_the_summary(
    api: TestClient,
) -> None:
    exp_id = _experiment(api)
    batch = [{"name": "loss", "value": v, "step": i} for i, v in enumerate([3.0, 1.0, 2.0])]
    assert _post(api, exp_id, batch).status_code == 200
    before = _series(api, exp_id)
    assert _post(api, exp_id, batch).status_code == 200
    assert _series(api, exp_id) == before
    # replacing the lowest point and back-filling an earlier step recompute the summary
    _post(api, exp_id, [{"name": "loss", "value": 5.0, "step": 1}])
    loss = _series(api, exp_id)["loss"]
    assert (loss["count"], loss["min_value"], loss["max_value"]) == (3, 2.0, 5.0)
    points = api.get(f"/experiment/{exp_id}/metrics/loss").json()["points"]
    assert [(p["step"], p["value"]) for p in points] == [(0, 3.0), (1, 5.0), (2, 2.0)]


def test_batch_without_steps_is_replayed_by_its_idempotency_key(api: TestClient) -> None:
    exp_id = _experiment(api)
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    first = _post(api, exp_id, [{"name": "loss", "value": 1.0}], headers=headers)
    again = _post(api, exp_id, [{"name": "loss", "value": 1.0}], headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert _series(api, exp_id)["loss"]["count"] == 1


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"metrics":[{"name":"a","value":1},{"name":"a","value":NaN}]}', "metrics.1.value"),
        (b'{"metrics":[{"name":"a","value":Infinity}]}', "metrics.0.value"),
        (b'{"metrics":[{"name":"a","value":1e999}]}', "metrics.0.value"),
        (b'{"metrics":[{"name":"a","value":true}]}', "metrics.0.value"),
        (b'{"metrics":[{"name":"a","value":"0.5"}]}', "metrics.0.value"),
        (b'{"metrics":[{"name":"a b","value":1}]}', "metrics.0.name"),
        (b'{"metrics":[{"name":"a","value":1,"step":-1}]}', "metrics.0.step"),
        (
            b'{"metrics":[{"name":"a","value":1,"timestamp":"2026-01-01T00:00:00"}]}',
            "metrics.0.timestamp",
        ),
        (b'{"metrics":[]}', "metrics"),
    ],
    ids=["nan", "infinity", "overflow", "bool", "text", "name", "step", "naive-time", "empty"],
)
def test_bad_points_are_refused_naming_the_point(api: TestClient, raw: bytes, field: str) -> None:
    exp_id = _experiment(api)
    answer = api.post(
        f"/experiment/{exp_id}/metrics", content=raw, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == field
    assert field in answer.json()["detail"]
    assert api.get(f"/experiment/{exp_id}/metrics").json() == []


def test_unknown_experiment_and_series_are_404(api: TestClient) -> None:
    missing = "01" + "A" * 24
    assert _post(api, missing, [{"name": "a", "value": 1}]).status_code == 404
    assert api.get(f"/experiment/{missing}/metrics").status_code == 404
    exp_id = _experiment(api)
    answer = api.get(f"/experiment/{exp_id}/metrics/nothing")
    assert answer.status_code == 404
    assert "nothing" in answer.json()["detail"]


def test_purge_removes_the_series(api: TestClient) -> None:
    exp_id = _experiment(api)
    _post(api, exp_id, [{"name": "loss", "value": 1.0}])
    assert api.delete(f"/experiment/{exp_id}").status_code in (200, 204)
    assert _post(api, exp_id, [{"name": "loss", "value": 1.0}]).status_code == 404
    assert api.delete(f"/trash/{exp_id}").status_code == 204
    assert api.get(f"/experiment/{exp_id}/metrics").status_code == 404


def _check_shape(posted: dict[int, float], answer: dict[str, Any], max_points: int) -> None:
    points = [(p["step"], p["value"]) for p in answer["points"]]
    steps = [s for s, _ in points]
    assert steps == sorted(set(steps))
    assert len(points) <= max_points
    assert all(posted[s] == v for s, v in points), "every point kept is a posted point"
    first, last = min(posted), max(posted)
    assert steps[0] == first and steps[-1] == last
    values = [v for _, v in points]
    if max_points < 4:  # room for the ends only
        assert len(points) == 2
        return
    assert min(values) == min(posted.values()) and max(values) == max(posted.values())
    assert answer["count"] == len(posted)
    assert answer["downsampled"] is (len(posted) > max_points)


@pytest.mark.parametrize(
    ("count", "spacing", "max_points"),
    [(50, 1, 100), (300, 1, 100), (5000, 1, 100), (3000, 1000, 50), (2000, 1, 2)],
    ids=["all-points", "from-points", "from-16-step-blocks", "from-4096-step-blocks", "two"],
)
def test_long_series_is_downsampled_keeping_ends_and_extremes(
    api: TestClient, count: int, spacing: int, max_points: int
) -> None:
    exp_id = _experiment(api)
    rng = random.Random(count)
    posted = {i * spacing: rng.uniform(-1, 1) for i in range(count)}
    spike = rng.choice(list(posted)[1:-1])
    posted[spike] = 50.0
    # sent in two batches, the second one appending to partly filled blocks
    items = [{"name": "loss", "value": v, "step": s} for s, v in posted.items()]
    half = len(items) // 2 + 7
    assert _post(api, exp_id, items[:half]).status_code == 200
    assert _post(api, exp_id, items[half:]).status_code == 200
    answer = api.get(f"/experiment/{exp_id}/metrics/loss", params={"max_points": max_points})
    assert answer.status_code == 200
    _check_shape(posted, answer.json(), max_points)
    # replacing points (a slower path that rebuilds blocks) keeps the shape exact too
    low = rng.choice(list(posted)[1:-1])
    posted[low] = -70.0
    assert _post(api, exp_id, [{"name": "loss", "value": -70.0, "step": low}]).status_code == 200
    answer = api.get(f"/experiment/{exp_id}/metrics/loss", params={"max_points": max_points})
    _check_shape(posted, answer.json(), max_points)


def _expected_kept(posted: dict[int, float], max_points: int) -> list[tuple[int, float]]:
    """The points a downsampled read keeps, worked out from the posted points alone: the first
    and last, and each bucket's lowest and highest (buckets as :func:`bucket_plan` cuts them)."""
    first, last = min(posted), max(posted)
    plan = bucket_plan(first, last, max_points)
    buckets: dict[int, list[tuple[int, float]]] = {}
    for step in sorted(posted):
        buckets.setdefault(plan.bucket(step), []).append((step, posted[step]))
    kept = {first, last}
    for members in buckets.values():
        kept.add(min(members, key=lambda m: m[1])[0])
        kept.add(max(members, key=lambda m: m[1])[0])
    return [(step, posted[step]) for step in sorted(kept)]


@pytest.mark.parametrize(
    ("count", "spacing", "max_points"),
    [(3000, 1, 400), (20000, 1, 1000), (5000, 1, 10), (3000, 1000, 50)],
    ids=["from-points", "from-16-step-blocks", "from-256-step-blocks", "from-4096-step-blocks"],
)
def test_downsampling_keeps_every_buckets_lowest_and_highest_point(
    api: TestClient, count: int, spacing: int, max_points: int
) -> None:
    exp_id = _experiment(api)
    rng = random.Random(count + max_points)
    # the first step is off a block boundary, so the buckets start before it
    posted = {5 + i * spacing: rng.uniform(-1, 1) for i in range(count)}
    items = [{"name": "loss", "value": v, "step": s} for s, v in posted.items()]
    for start in range(0, len(items), 7_000):  # batches appending to partly filled blocks
        assert _post(api, exp_id, items[start : start + 7_000]).status_code == 200

    def read() -> list[tuple[int, float]]:
        answer = api.get(f"/experiment/{exp_id}/metrics/loss", params={"max_points": max_points})
        assert answer.status_code == 200
        points = answer.json()["points"]
        assert 0 < len(points) <= max_points
        return [(p["step"], p["value"]) for p in points]

    assert read() == _expected_kept(posted, max_points)
    # a replaced point (the path that rebuilds blocks from the points) is reflected exactly
    replaced = rng.choice(list(posted)[1:-1])
    posted[replaced] = -5.0
    assert _post(api, exp_id, [{"name": "loss", "value": -5.0, "step": replaced}]).status_code
    assert read() == _expected_kept(posted, max_points)


def test_max_points_out_of_range_is_422(api: TestClient) -> None:
    exp_id = _experiment(api)
    _post(api, exp_id, [{"name": "loss", "value": 1.0}])
    for bad in ("1", "100001", "many"):
        answer = api.get(f"/experiment/{exp_id}/metrics/loss", params={"max_points": bad})
        assert answer.status_code == 422
        assert answer.json()["error"]["field"] == "max_points"


def test_many_series_read_together_equal_each_read_alone(api: TestClient) -> None:
    """The compare page reads every series of its runs at once (a few queries over all of
    them); each comes back as its own read gives it, whatever block level it needs."""
    rng = random.Random(7)
    lengths = {
        "short": (40, 1),
        "points": (300, 1),
        "blocks16": (5000, 1),
        "blocks4096": (900, 1000),
    }
    ids = [_experiment(api) for _ in range(2)]
    for exp_id in ids:
        items = [
            {"name": name, "value": rng.uniform(-1, 1), "step": i * spacing + 3}
            for name, (count, spacing) in lengths.items()
            for i in range(count)
        ]
        assert _post(api, exp_id, items).status_code == 200
    empty = _experiment(api)
    store = api.app.state.lab.metrics  # type: ignore[attr-defined]
    read = store.read_many([*ids, empty], 100)
    assert list(read) == [*ids, empty] and read[empty] == {}
    for exp_id in ids:
        assert sorted(read[exp_id]) == sorted(lengths)
        for name in lengths:
            alone = api.get(f"/experiment/{exp_id}/metrics/{name}", params={"max_points": 100})
            expected = [(p["step"], p["value"]) for p in alone.json()["points"]]
            assert [(p[0], p[1]) for p in read[exp_id][name]] == expected, name
