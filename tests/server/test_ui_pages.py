"""The web UI's pages and JSON twins over real HTTP (in-process app, real SQLite/PostgreSQL)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from labledger.core.lifecycle import ExperimentStatus
from server.ui_support import act, start, sweep


class Page(HTMLParser):
    """The parts of a page the tests look at: rows, links, buttons, badges."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.links: list[str] = []
        self.json_links: list[str] = []
        self.buttons: dict[str, bool] = {}
        self.badges: list[str] = []
        self.differs = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-id"):
            self.rows.append(a["data-id"] or "")
        if tag == "tr" and a.get("class") == "differs":
            self.differs += 1
        if tag == "a" and a.get("href"):
            self.links.append(a["href"] or "")
            if "json-link" in (a.get("class") or ""):
                self.json_links.append(a["href"] or "")
        if tag == "button" and a.get("data-action"):
            self.buttons[a["data-action"] or ""] = "disabled" not in a
        if tag == "span" and a.get("data-status"):
            self.badges.append(a["data-status"] or "")


def page(api: TestClient, url: str, status: int = 200) -> Page:
    response = api.get(url)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    return Page(response.text)


def test_root_and_ui_redirect_to_the_experiments_page(sqlite_api: TestClient) -> None:
    for url in ("/", "/ui", "/ui/"):
        response = sqlite_api.get(url, follow_redirects=False)
        assert response.status_code == 307
        assert response.headers["location"] == "/ui/experiments"


def test_static_assets_are_served_from_the_package(sqlite_api: TestClient) -> None:
    html = sqlite_api.get("/ui/experiments").text
    for asset in re.findall(r'(?:href|src)="(/ui/static/[^"]+)"', html):
        response = sqlite_api.get(asset)
        assert response.status_code == 200 and response.content, asset
    assert "http://" not in html.split("<main", 1)[0] and "https://" not in html


def test_experiments_page_filters_by_status_and_names_its_json_twin(api: TestClient) -> None:
    running = start(api, run_name="running one")["_id"]
    paused = act(api, start(api, run_name="paused one")["_id"], "pause")["_id"]
    queued = start(api, run_name="queued one", status="queued")["_id"]
    everything = page(api, "/ui/experiments")
    assert everything.rows == [queued, paused, running]
    only_paused = page(api, "/ui/experiments?status=paused")
    assert only_paused.rows == [paused]
    assert only_paused.badges == ["paused"]
    (twin,) = only_paused.json_links
    assert urlsplit(twin).path == "/experiments"
    assert [e["_id"] for e in api.get(twin).json()] == only_paused.rows


def test_experiments_page_text_owner_and_campaign_filters(sqlite_api: TestClient) -> None:
    owner = "01JC0000000000000000000001"
    mine = start(sqlite_api, "Titration", design_parameters={}, run_name="acid")["_id"]
    sqlite_api.post(
        "/experiment",
        json={
            "experiment_design": {"experiment_name": "Other", "ownership_info": {"user_id": owner}}
        },
    )
    assert page(sqlite_api, "/ui/experiments?text=titra").rows == [mine]
    assert len(page(sqlite_api, f"/ui/experiments?owner={owner}").rows) == 1
    campaign_id, ids = sweep(sqlite_api, [10, 20])
    assert page(sqlite_api, f"/ui/experiments?campaign_id={campaign_id}").rows == ids[::-1]


def test_experiments_page_sorts_and_pages_on_the_server(api: TestClient) -> None:
    ids = [start(api, run_name=f"run {i:02d}")["_id"] for i in range(30)]
    first = page(api, "/ui/experiments?size=25")
    assert first.rows == ids[::-1][:25]
    second = page(api, "/ui/experiments?size=25&page=2")
    assert second.rows == ids[::-1][25:]
    by_run_name = page(api, "/ui/experiments?sort=run_name&size=25")
    assert by_run_name.rows == ids[:25]
    assert "page 2 of 2" in api.get("/ui/experiments?size=25&page=2").text
    assert any("page=2" in link for link in first.links)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=31-01-2026", "since"),
        ("sort=colour", "sort"),
        ("size=7", "size"),
        ("status=done", "status"),
    ],
    ids=["date", "sort", "size", "status"],
)
def test_a_bad_filter_gives_a_readable_error_page(
    sqlite_api: TestClient, query: str, field: str
) -> None:
    response = sqlite_api.get(f"/ui/experiments?{query}")
    assert response.status_code == 422
    assert 'role="alert"' in response.text
    message = re.search(r'id="filter-error">([^<]+)<', response.text)
    assert message is not None and message.group(1).startswith(f"{field}:"), response.text


def test_api_sort_orders_and_rejects_unknown_keys(api: TestClient) -> None:
    b = start(api, "b")["_id"]
    a = act(api, start(api, "a")["_id"], "end")["_id"]
    c = start(api, "c", status="planned")["_id"]
    assert [e["_id"] for e in api.get("/experiments?sort=name").json()] == [a, b, c]
    assert [e["_id"] for e in api.get("/experiments?sort=-name").json()] == [c, b, a]
    # experiments that never ended come last, in either direction
    assert next(e["_id"] for e in api.get("/experiments?sort=-ended_at").json()) == a
    assert next(e["_id"] for e in api.get("/experiments?sort=ended_at").json()) == a
    bad = api.get("/experiments?sort=colour")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "sort"


def test_experiment_page_offers_only_the_actions_the_lifecycle_allows(
    sqlite_api: TestClient,
) -> None:
    exp = start(sqlite_api, parameters={"temperature": 25}, run_name="warm")
    running = page(sqlite_api, f"/ui/experiments/{exp['_id']}")
    assert running.buttons == {"pause": True, "continue": False, "end": True, "cancel": True}
    act(sqlite_api, exp["_id"], "pause")
    paused = page(sqlite_api, f"/ui/experiments/{exp['_id']}")
    assert paused.buttons == {"pause": False, "continue": True, "end": True, "cancel": True}
    act(sqlite_api, exp["_id"], "end")
    ended = page(sqlite_api, f"/ui/experiments/{exp['_id']}")
    assert not any(ended.buttons.values())
    assert ended.json_links == [f"/experiment/{exp['_id']}"]


def test_experiment_page_shows_parameters_events_and_recorder_notes(
    sqlite_api: TestClient,
) -> None:
    exp = start(
        sqlite_api,
        parameters={"temperature": 25, "solvent": "<b>water</b>"},
        metadata={
            "recorder.hypothesis": "Warmer runs yield more",
            "recorder.code_version": {"commit": "abc123"},
        },
    )
    act(sqlite_api, exp["_id"], "pause")
    html = sqlite_api.get(f"/ui/experiments/{exp['_id']}").text
    assert "&lt;b&gt;water&lt;/b&gt;" in html and "<b>water</b>" not in html
    assert "Recorder run" in html and "Warmer runs yield more" in html and "abc123" in html
    assert "in_progress → paused" in html
    timeline = sqlite_api.get(f"/ui/experiments/{exp['_id']}/timeline.svg")
    assert timeline.headers["content-type"].startswith("image/svg+xml")
    assert timeline.text.count('class="span"') == 2


def test_missing_experiment_page_is_a_404_page_with_the_message(sqlite_api: TestClient) -> None:
    response = sqlite_api.get("/ui/experiments/01JC0000000000000000000000")
    assert response.status_code == 404
    assert "01JC0000000000000000000000" in response.text and 'role="alert"' in response.text


def test_compare_twin_lists_every_field_and_marks_differences(sqlite_api: TestClient) -> None:
    _, (cold, hot) = sweep(sqlite_api, [20, 80])
    data = sqlite_api.get(f"/experiments/compare?ids={cold},{hot}").json()
    assert data["ids"] == [cold, hot]
    fields = {f["key"]: f for f in data["fields"]}
    assert fields["parameters.temperature"]["values"] == [20, 80]
    assert fields["parameters.temperature"]["differs"] is True
    assert fields["parameters.solvent"]["differs"] is False
    assert "results.yield" in data["differing"] and "parameters.solvent" not in data["differing"]
    shown = page(sqlite_api, f"/ui/compare?ids={cold}&ids={hot}")
    assert shown.differs == len(data["differing"])
    assert shown.json_links == [f"/experiments/compare?ids={cold},{hot}"]


@pytest.mark.parametrize("ids", ["", "01JC0000000000000000000000"], ids=["none", "one"])
def test_compare_needs_at_least_two_ids(sqlite_api: TestClient, ids: str) -> None:
    response = sqlite_api.get(f"/experiments/compare?ids={ids}")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "ids"
    assert sqlite_api.get(f"/ui/compare?ids={ids}").status_code == 422


def test_compare_names_the_missing_experiment(sqlite_api: TestClient) -> None:
    real = start(sqlite_api)["_id"]
    ghost = "01JC0000000000000000000000"
    response = sqlite_api.get(f"/experiments/compare?ids={real},{ghost}")
    assert response.status_code == 404 and ghost in response.json()["detail"]


def test_status_counts_twin_agrees_with_the_count_endpoint(api: TestClient) -> None:
    for _ in range(2):
        start(api)
    act(api, start(api)["_id"], "cancel")
    start(api, status="queued")
    counts = api.get("/experiments/status-counts").json()
    assert counts["total"] == api.get("/experiments/count").json()["count"] == 4
    expected = {s.value: 0 for s in ExperimentStatus} | {
        "in_progress": 2,
        "cancelled": 1,
        "queued": 1,
    }
    assert counts["counts"] == expected
    narrowed = api.get("/experiments/status-counts?status=queued,cancelled").json()
    assert narrowed["total"] == 2


def test_campaign_page_shows_progress_and_its_charts(sqlite_api: TestClient) -> None:
    campaign_id, ids = sweep(sqlite_api, [20, 40, 60])
    act(sqlite_api, ids[0], "end")
    html = sqlite_api.get(f"/ui/campaigns/{campaign_id}").text
    assert '<span id="finished">1</span> of <span id="total">3</span>' in html
    # status, results against a parameter, parallel coordinates, grouped scatter
    assert html.count("<svg") == 4
    listed = page(sqlite_api, "/ui/campaigns")
    assert listed.rows == [campaign_id]
    assert page(sqlite_api, f"/ui/campaigns/{campaign_id}").json_links == [
        f"/campaign/{campaign_id}"
    ]


def test_queue_page_lists_queued_in_claim_order_and_running(sqlite_api: TestClient) -> None:
    low = start(sqlite_api, run_name="low", status="queued", priority=1)["_id"]
    high = start(sqlite_api, run_name="high", status="queued", priority=9)["_id"]
    low_later = start(sqlite_api, run_name="low later", status="queued", priority=1)["_id"]
    running = start(sqlite_api, run_name="now")["_id"]
    start(sqlite_api, run_name="planned", status="planned")
    shown = page(sqlite_api, "/ui/queue")
    assert shown.rows == [running, high, low, low_later]


def test_experiment_page_shows_results_files_and_milestones(sqlite_api: TestClient) -> None:
    exp = start(sqlite_api, run_name="measured")["_id"]
    values = {"yield": 41.5, "purity": 97, "curve": [1, 4, 9, 16], "note": "clear solution"}
    assert sqlite_api.post(f"/experiment/{exp}/results", json={"values": values}).status_code < 300
    upload = sqlite_api.post(
        f"/experiment/{exp}/files/trace", files={"file": ("trace.csv", b"t,a\n0,1\n", "text/csv")}
    )
    assert upload.status_code == 201, upload.text
    milestone = {"name": "heated", "progress": 0.5, "data": {"temperature": 80}}
    assert sqlite_api.post(f"/experiment/{exp}/milestones", json=milestone).status_code < 300
    html = sqlite_api.get(f"/ui/experiments/{exp}").text
    assert "41.5" in html and "clear solution" in html
    assert html.count("<svg") == 3  # timeline, the numeric results, the curve
    assert "heated" in html and "&#34;temperature&#34;: 80" in html
    (href,) = re.findall(r'<a href="([^"]+)" download=', html)
    download = sqlite_api.get(href)
    assert download.status_code == 200 and download.content == b"t,a\n0,1\n"
    for twin in (f"/experiment/{exp}/results", f"/experiment/{exp}/milestones"):
        assert f'href="{twin}"' in html and sqlite_api.get(twin).status_code == 200
    report = re.search(r'href="(/experiment/[^"]+/report\?format=html)"', html)
    assert report is not None and sqlite_api.get(report.group(1)).status_code == 200


def test_campaign_page_links_its_report_and_results_table(sqlite_api: TestClient) -> None:
    campaign_id, _ = sweep(sqlite_api, [20, 40])
    html = sqlite_api.get(f"/ui/campaigns/{campaign_id}").text
    links = re.findall(r'href="(/campaign/[^"]+)"', html)
    assert f"/campaign/{campaign_id}/progress" in links
    assert f"/campaign/{campaign_id}/results" in links
    markdown = next(link for link in links if "format=md" in link).replace("&amp;", "&")
    response = sqlite_api.get(markdown)
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    assert "Temperature sweep" in response.text


def test_campaign_controls_follow_the_campaign_lifecycle(sqlite_api: TestClient) -> None:
    campaign_id, _ = sweep(sqlite_api, [20, 40])
    active = page(sqlite_api, f"/ui/campaigns/{campaign_id}")
    assert active.buttons == {"pause": True, "resume": False, "cancel": True}
    assert sqlite_api.post(f"/campaign/{campaign_id}/pause").status_code == 200
    paused = page(sqlite_api, f"/ui/campaigns/{campaign_id}")
    assert paused.buttons == {"pause": False, "resume": True, "cancel": True}
    assert sqlite_api.post(f"/campaign/{campaign_id}/cancel").status_code == 200
    cancelled = page(sqlite_api, f"/ui/campaigns/{campaign_id}")
    assert not any(cancelled.buttons.values())


def test_experiments_table_names_each_campaign(sqlite_api: TestClient) -> None:
    campaign_id, _ = sweep(sqlite_api, [20])
    html = sqlite_api.get("/ui/experiments").text
    assert (
        f'<a href="/ui/campaigns/{campaign_id}" title="Temperature sweep">Temperature sweep</a>'
        in html
    )
