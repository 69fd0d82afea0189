"""The web UI in a real headless Chromium against a real ``labledger serve`` process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from labledger_fixtures import LiveServer, server_env
from server.chromium import chromium
from server.ui_support import act, log_points, start, sweep

pytestmark = pytest.mark.browser

WAIT = 15.0  # seconds; pages poll every 2 s


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module, with a fresh profile."""
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, httpx.Client]]:
    """One ``labledger serve`` for the module (as the ``live_server`` fixture starts it) and an
    API client for seeding it. Tests keep to their own experiments, so they can share it."""
    workdir = tmp_path_factory.mktemp("ui-server")
    srv = LiveServer(
        db_url=f"sqlite:///{workdir}/labledger.sqlite3", workdir=workdir, env=server_env()
    )
    srv.start()
    try:
        with httpx.Client(base_url=srv.url.rstrip("/"), timeout=10) as client:
            yield srv.url.rstrip("/"), client
    finally:
        srv.stop()


def wait(driver: Any, condition: Any, message: str) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # the page's script redraws badges and charts live: an element found a moment ago may be
    # gone when it is read, which only means "not yet", so the condition is asked again
    stale = (StaleElementReferenceException,)
    waiting = WebDriverWait(driver, WAIT, poll_frequency=0.1, ignored_exceptions=stale)
    return waiting.until(condition, message)


def css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def badge_of(driver: Any, selector: str) -> str:
    """The status a badge shows, read in one step (the page's script replaces badges live)."""
    script = "const b = document.querySelector(arguments[0]); return b && b.dataset.status;"
    return str(driver.execute_script(script, f"{selector} .badge"))


def test_open_each_page_and_filter_the_experiments(
    browser: Any, server: tuple[str, httpx.Client]
) -> None:
    base, api = server
    campaign_id, ids = sweep(api, [20, 40, 60])
    act(api, ids[0], "pause")
    start(api, run_name="waiting", status="queued", priority=3)
    browser.get(f"{base}/")
    assert browser.current_url.endswith("/ui/experiments")
    assert {ids[0], ids[1]} <= {r.get_attribute("data-id") for r in css(browser, "tr[data-id]")}
    css(browser, 'input[name="campaign_id"]')[0].send_keys(campaign_id)
    css(browser, 'input[name="status"][value="paused"]')[0].click()
    css(browser, "form.filters button[type=submit]")[0].click()
    wait(browser, lambda d: "status=paused" in d.current_url, "filter not applied")
    rows = css(browser, "tr[data-id]")
    assert [r.get_attribute("data-id") for r in rows] == [ids[0]]
    assert css(browser, 'input[value="paused"]')[0].is_selected()
    for path, heading in [
        (f"/ui/experiments/{ids[1]}", "T=40"),
        ("/ui/campaigns", "Campaigns"),
        (f"/ui/campaigns/{campaign_id}", "Temperature sweep"),
        ("/ui/queue", "Queue"),
    ]:
        browser.get(base + path)
        assert css(browser, "h1")[0].text == heading
        assert not css(browser, ".message.error")
    assert [r.get_attribute("data-id") for r in css(browser, "table.queued tr[data-id]")]


def test_pausing_shows_the_new_status_live(browser: Any, server: tuple[str, httpx.Client]) -> None:
    base, api = server
    mine = start(api, run_name="clicked")["_id"]
    other = start(api, run_name="paused elsewhere")["_id"]
    browser.get(f"{base}/ui/experiments/{mine}")
    assert badge_of(browser, "#status") == "in_progress"
    css(browser, 'button[data-action="pause"]')[0].click()
    wait(browser, lambda d: badge_of(d, "#status") == "paused", "badge did not turn paused")
    assert api.get(f"/experiment/{mine}").json()["lifecycle_status"] == "paused"
    assert css(browser, 'button[data-action="continue"]')[0].is_enabled()
    assert not css(browser, 'button[data-action="pause"]')[0].is_enabled()
    wait(browser, lambda d: "paused" in d.find_element("id", "event-rows").text, "no event row")
    # a change made by someone else shows up on an open list without reloading it
    browser.get(f"{base}/ui/experiments")
    marker = browser.execute_script("window.__same_page = 1; return window.__same_page")
    act(api, other, "pause")
    row = f'tr[data-id="{other}"] .status-cell'
    wait(browser, lambda d: badge_of(d, row) == "paused", "list did not update live")
    assert browser.execute_script("return window.__same_page") == marker
    live = css(browser, "#live")[0]  # screen readers hear the change
    wait(browser, lambda d: "paused" in (live.get_attribute("textContent") or ""), "not announced")
    # a new experiment is offered, not pushed into the table under the reader's eyes
    newcomer = start(api, run_name="newcomer")["_id"]
    note = css(browser, "#new-note")[0]
    wait(browser, lambda d: note.is_displayed(), "no note about new experiments")
    assert not css(browser, f'tr[data-id="{newcomer}"]')
    note.find_element("css selector", "a").click()
    wait(browser, lambda d: css(d, f'tr[data-id="{newcomer}"]'), "reload did not show it")


def test_a_refused_transition_is_shown_as_a_readable_message(
    browser: Any, server: tuple[str, httpx.Client]
) -> None:
    base, api = server
    exp = start(api, run_name="race")["_id"]
    browser.get(f"{base}/ui/experiments/{exp}")
    css(browser, 'button[data-action="cancel"]')[0].click()
    dialog = css(browser, "dialog#confirm")[0]
    wait(browser, lambda d: dialog.get_attribute("open") is not None, "no confirmation dialog")
    act(api, exp, "end")  # someone else ends it while the dialog is open
    css(browser, "#confirm-ok")[0].click()
    message = css(browser, "#action-message")[0]
    wait(browser, lambda d: message.is_displayed() and message.text, "no message shown")
    assert message.text.startswith("Refused:")
    assert "completed" in message.text and "cancelled" in message.text
    wait(browser, lambda d: badge_of(d, "#status") == "completed", "badge not refreshed")
    assert api.get(f"/experiment/{exp}").json()["lifecycle_status"] == "completed"


def test_campaign_chart_follows_the_chosen_parameter(
    browser: Any, server: tuple[str, httpx.Client]
) -> None:
    from selenium.webdriver.support.ui import Select

    base, api = server
    campaign_id, ids = sweep(api, [10, 30, 20])
    act(api, ids[0], "end")
    browser.get(f"{base}/ui/campaigns/{campaign_id}")
    bars = css(browser, "#status-chart rect.bar")
    assert sorted(b.get_attribute("data-label") for b in bars) == ["completed", "in_progress"]
    # the default is the parameter that varies; switching redraws the chart in place
    assert Select(css(browser, "#plot-x")[0]).first_selected_option.text == "parameters.temperature"
    Select(css(browser, "#plot-x")[0]).select_by_value("parameters.solvent")
    wait(browser, lambda d: "x=parameters.solvent" in d.current_url, "chart not replotted")
    points = css(browser, "#results-chart circle.point")
    assert {p.get_attribute("data-x") for p in points} == {"water"}
    Select(css(browser, "#plot-x")[0]).select_by_value("parameters.temperature")
    Select(css(browser, "#plot-y")[0]).select_by_value("results.yield")
    wait(browser, lambda d: "x=parameters.temperature" in d.current_url, "chart not replotted")
    wait(browser, lambda d: len(css(d, "#results-chart circle.point")) == 3, "points missing")
    xs = sorted(p.get_attribute("data-x") for p in css(browser, "#results-chart circle.point"))
    assert xs == ["10", "20", "30"]
    title = css(browser, "#results-chart svg title")[0].get_attribute("textContent")
    assert "yield" in title and "temperature" in title


def test_compare_two_experiments_from_the_list(
    browser: Any, server: tuple[str, httpx.Client]
) -> None:
    base, api = server
    _, (cold, hot) = sweep(api, [20, 80])
    browser.get(f"{base}/ui/experiments")
    for exp_id in (cold, hot):
        css(browser, f'input[name="ids"][value="{exp_id}"]')[0].click()
    css(browser, "#compare-button")[0].click()
    wait(browser, lambda d: "/ui/compare" in d.current_url, "compare page not opened")
    differing = [r.find_element("css selector", "th").text for r in css(browser, "tr.differs")]
    assert any(t.startswith("parameters.temperature") for t in differing)
    assert not any(t.startswith("parameters.solvent") for t in differing)
    same_rows = css(browser, "tr.same")
    assert same_rows and same_rows[0].is_displayed()
    css(browser, "#only-diff")[0].click()
    assert not same_rows[0].is_displayed()


def test_pausing_a_campaign_from_its_page(browser: Any, server: tuple[str, httpx.Client]) -> None:
    base, api = server
    campaign_id, ids = sweep(api, [15, 25])
    browser.get(f"{base}/ui/campaigns/{campaign_id}")
    assert badge_of(browser, "#status") == "active"
    css(browser, 'button[data-action="pause"]')[0].click()
    wait(browser, lambda d: badge_of(d, "#status") == "paused", "campaign badge not paused")
    assert css(browser, 'button[data-action="resume"]')[0].is_enabled()
    assert {api.get(f"/experiment/{i}").json()["lifecycle_status"] for i in ids} == {"paused"}
    wait(
        browser,
        lambda d: (
            [b.get_attribute("data-label") for b in css(d, "#status-chart rect.bar")] == ["paused"]
        ),
        "status chart not redrawn",
    )


def test_the_controls_work_from_the_keyboard(
    browser: Any, server: tuple[str, httpx.Client]
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    base, api = server
    exp = start(api, run_name="keyboard only")["_id"]
    browser.get(f"{base}/ui/experiments/{exp}")
    keys = ActionChains(browser)
    keys.send_keys(Keys.TAB).perform()
    focused = browser.switch_to.active_element
    assert focused.get_attribute("class") == "skip" and focused.is_displayed()
    for _ in range(30):  # walk the links of the page until the Pause button has the focus
        if browser.switch_to.active_element.get_attribute("data-action") == "pause":
            break
        keys.send_keys(Keys.TAB).perform()
    assert browser.switch_to.active_element.get_attribute("data-action") == "pause"
    outline = browser.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # focus is visible
    keys.send_keys(Keys.ENTER).perform()
    wait(browser, lambda d: badge_of(d, "#status") == "paused", "Enter did not pause")
    # a confirmation opens on the keyboard, starts on the safe choice, and Escape backs out
    cancel = css(browser, 'button[data-action="cancel"]')[0]
    browser.execute_script("arguments[0].focus()", cancel)
    keys.send_keys(Keys.ENTER).perform()
    assert browser.switch_to.active_element.get_attribute("id") == "confirm-cancel"
    keys.send_keys(Keys.ESCAPE).perform()
    wait(browser, lambda d: css(d, "dialog#confirm")[0].get_attribute("open") is None, "open")
    assert api.get(f"/experiment/{exp}").json()["lifecycle_status"] == "paused"


def test_metric_charts_follow_a_running_experiment(
    browser: Any, server: tuple[str, httpx.Client]
) -> None:
    base, api = server
    exp = start(api, run_name="live training")["_id"]
    browser.get(f"{base}/ui/experiments/{exp}")
    assert "No metric series yet." in css(browser, "#metrics")[0].text
    points = [{"name": "loss", "value": 1.0 / (i + 1), "step": i} for i in range(100)]
    log_points(api, exp, points)
    chart = 'figure.metric[data-metric="loss"] svg[role="img"]'
    wait(browser, lambda d: css(d, chart), "the loss chart did not appear while running")
    more = [{"name": "loss", "value": 0.001, "step": 500}]
    log_points(api, exp, more)
    last = 'figure.metric[data-metric="loss"] g.curve[data-last="0.001"]'
    wait(browser, lambda d: css(d, last), "the chart did not take the new point")
    svg = css(browser, chart)[0]
    box = svg.rect
    assert box["width"] > 300 and box["height"] > 150  # drawn, at a readable size
    title = browser.execute_script("return arguments[0].querySelector('title').textContent", svg)
    assert title == "loss of live training"


def test_campaign_and_compare_plots_of_a_two_factor_sweep(
    browser: Any, server: tuple[str, httpx.Client]
) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import Select

    base, api = server
    campaign_id = api.post("/campaign", json={"campaign_name": "Optimiser sweep"}).json()[
        "campaign_id"
    ]
    ids = []
    for opt in ("adam", "sgd"):
        for lr in (0.1, 0.01):
            exp = start(
                api,
                run_name=f"{opt} {lr}",
                campaign_id=campaign_id,
                parameters={"lr": lr, "opt": opt},
            )["_id"]
            points = [{"name": "loss", "value": lr / (i + 1), "step": i} for i in range(20)]
            log_points(api, exp, points)
            ids.append(exp)
    browser.get(f"{base}/ui/campaigns/{campaign_id}")
    for figure in ("#parallel", "#scatter"):
        # On a loaded machine the driver has been seen to answer the first query from before
        # the page's charts were in the document (its text read a moment later showed them),
        # so the charts are waited for; if one never comes, say what the page showed instead.
        try:
            svg = wait(
                browser, lambda d, f=figure: next(iter(css(d, f'{f} svg[role="img"]')), None), ""
            )
        except TimeoutException:
            page = css(browser, "body")[0].text[:1500]
            raise AssertionError(f"{figure} not drawn; the page said: {page}") from None
        assert svg.rect["width"] > 300 and svg.rect["height"] > 150, figure  # drawn, readable
    assert len(css(browser, "#parallel g.run")) == 4
    groups = [g.get_attribute("data-group") for g in css(browser, "#scatter g.group")]
    assert groups == ["adam", "sgd"]
    Select(css(browser, 'select[name="scatter_x"]')[0]).select_by_value("metrics.loss")
    Select(css(browser, 'select[name="scatter_y"]')[0]).select_by_value("parameters.lr")
    css(browser, 'form.axes-form button[type="submit"]')[0].click()
    wait(browser, lambda d: "scatter_x=metrics.loss" in d.current_url, "scatter not replotted")
    title = css(browser, "#scatter svg title")[0].get_attribute("textContent")
    assert title == "parameters.lr against metrics.loss"
    # the compare page of the same runs: one overlaid curve per run, with a legend
    browser.get(f"{base}/ui/compare?ids={','.join(ids)}")
    chart = css(browser, 'figure.metric[data-metric="loss"] svg[role="img"]')[0]
    assert chart.rect["width"] > 300 and chart.rect["height"] > 150
    assert len(css(browser, 'figure.metric[data-metric="loss"] g.curve')) == 4
    legend = css(browser, 'figure.metric[data-metric="loss"] svg')[0].text
    assert all(f"{opt} {lr}" in legend for opt in ("adam", "sgd") for lr in (0.1, 0.01))
    assert css(browser, '#parallel svg[role="img"]') and css(browser, '#scatter svg[role="img"]')


#: every text of an svg whose drawn box leaves the svg's box (by more than half a pixel)
OUTSIDE = """
const svg = arguments[0], box = svg.getBoundingClientRect();
return Array.from(svg.querySelectorAll('text')).filter(t => {
  const r = t.getBoundingClientRect();
  return r.width > 0 && (r.left < box.left - 0.5 || r.right > box.right + 0.5 ||
                         r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5);
}).map(t => t.textContent);
"""

#: for each line of a chart, the groups of the points its vertices sit on
LINE_GROUPS = """
const svg = arguments[0];
const groupAt = {};
for (const c of svg.querySelectorAll('circle.point')) {
  groupAt[c.getAttribute('cx') + ',' + c.getAttribute('cy')] = c.getAttribute('data-group');
}
return Array.from(svg.querySelectorAll('polyline.series')).map(
  l => Array.from(new Set(l.getAttribute('points').trim().split(/\\s+/).map(v => groupAt[v]))));
"""


def test_chart_labels_stay_inside_their_pictures_and_lines_stay_in_their_groups(
    browser: Any, server: tuple[str, httpx.Client]
) -> None:
    base, api = server
    campaign_id = api.post("/campaign", json={"campaign_name": "Long names"}).json()["campaign_id"]
    ids = []
    for solvent, gain in (("water", 1.5), ("ethanol", 2.5)):
        for temperature in (10, 20, 30):
            exp = start(
                api,
                run_name=f"{solvent} {temperature}",
                campaign_id=campaign_id,
                parameters={"reaction_temperature_celsius": temperature, "solvent": solvent},
            )["_id"]
            points = [
                {"name": "validation_accuracy_top5", "value": 0.5 + temperature / 100 + i / 1e4}
                for i in range(5)
            ]
            log_points(api, exp, points)
            result = {"values": {"isolated_yield_percent": temperature * gain}}
            assert api.post(f"/experiment/{exp}/results", json=result).status_code in (200, 201)
            ids.append(exp)
    pages = (f"/ui/campaigns/{campaign_id}", f"/ui/compare?ids={','.join(ids)}")
    for page in pages:
        browser.get(base + page)
        svg = css(browser, '#parallel svg[role="img"]')[0]
        labels = [t.text for t in css(browser, "#parallel text.axis-label")]
        # the last axis is the metric, with the longest name
        assert labels[-1] == "metrics.validation_accuracy_top5", (page, labels)
        assert browser.execute_script(OUTSIDE, svg) == [], page
    # the older results chart of the campaign: a line per solvent, none across them
    browser.get(f"{base}/ui/campaigns/{campaign_id}")
    chart = css(browser, '#results-chart svg[role="img"]')[0]
    assert browser.execute_script(OUTSIDE, chart) == []
    line_groups = browser.execute_script(LINE_GROUPS, chart)
    assert sorted(line_groups) == [["solvent=ethanol"], ["solvent=water"]]
