"""End to end in a real MADSci 0.8.1 lab: workflows, data points, resources and events of an
experiment and a campaign read through labledger; pause, continue and cancel reaching the
workflows; a lab that is down never breaking a labledger route.

The lab (managers and instruments) is started once per session; one labledger server per module
and backend (SQLite and PostgreSQL).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from lab.lab_apps import Measure
from lab.lab_fixtures import MadsciLab
from labledger.client.sync import ExperimentClient
from labledger.client.workflows import Workcell
from labledger_fixtures import LiveServer, serve_command

# the first test of a session may build the managers' venv (minutes, once; cached after)
pytestmark = [pytest.mark.madsci, pytest.mark.slow, pytest.mark.timeout(1800)]

T = TypeVar("T")
HERE = Path(__file__).parent


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """``check()`` once it is truthy; fails naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what} (last: {last!r})")
        time.sleep(interval)
        last = check()
    return last


def wait_until(get: Callable[[], T], accept: Callable[[T], bool], timeout: float, what: str) -> T:
    """``get()`` once ``accept`` takes it; fails naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    value = get()
    while not accept(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what} (last: {value!r})")
        time.sleep(0.1)
        value = get()
    return value


@contextlib.contextmanager
def stopped(*processes: subprocess.Popen[bytes] | None) -> Iterator[None]:
    """Freeze processes (SIGSTOP: they accept connections but never answer) while inside."""
    pids = [p.pid for p in processes if p is not None]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def lab_get(server: LiveServer, path: str) -> httpx.Response:
    response = httpx.get(f"{server.url}{path}", timeout=30)
    assert response.status_code < 500, (path, response.status_code, response.text[:500])
    return response


def slow_workflow(node: str) -> dict[str, Any]:
    return {
        "name": "slow",
        "steps": [
            {"name": f"wait{i}", "node": node, "action": "sleep", "args": {"seconds": 2}}
            for i in range(3)
        ],
    }


def control_events(client: ExperimentClient, experiment_id: str) -> list[dict[str, Any]]:
    return [
        e.data
        for e in client.get_events(experiment_id=experiment_id)
        if e.type.value == "workflow_control"
    ]


# --------------------------------------------------------------------------------------------


@pytest.mark.browser
def test_our_application_runs_a_workflow_whose_record_labledger_shows(
    lab_server: LiveServer, madsci_lab: MadsciLab, browser: Any, tmp_path: Path
) -> None:
    app = Measure(lab_server.url, workcell_url=madsci_lab.url("workcell"), poll_interval=0.2)
    try:
        experiment = app.start(sample="B2", node="sim1")
    finally:
        app.close()
    eid = experiment.experiment_id
    assert experiment.status.value == "completed"

    workflows = lab_get(lab_server, f"experiment/{eid}/workflows")
    assert workflows.headers["X-Lab-State"] == "ok" and workflows.headers["X-Lab-Read-At"]
    [workflow] = workflows.json()
    assert workflow["ownership_info"]["experiment_id"] == eid
    assert workflow["status"]["completed"] is True
    assert [s["status"] for s in workflow["steps"]] == ["succeeded"] * 3
    assert all(s["start_time"] and s["end_time"] for s in workflow["steps"])

    points = lab_get(lab_server, f"experiment/{eid}/datapoints").json()
    produced = [
        p for p in points if p["ownership_info"].get("workflow_id") == workflow["workflow_id"]
    ]
    assert len(produced) == 3 and all("_id" in p for p in produced)
    readings = [p["value"] for p in produced if "absorbance" in p["value"]]
    assert {r["sample"] for r in readings} == {"B2", "B2x"}
    with ExperimentClient(lab_server.url) as client:
        results = {r.name: r.value for r in client.get_results(eid)}
    assert results["absorbance"] == readings[0]["absorbance"] or results["absorbance"] in [
        r["absorbance"] for r in readings
    ]
    assert results["workflow_id"] == workflow["workflow_id"]

    # a file data point the experiment stored itself, downloadable through labledger
    content = b"well,absorbance\nB2,0.42\n"
    stored = httpx.post(
        f"{madsci_lab.url('data')}/datapoint",
        data={
            "datapoint": json.dumps(
                {
                    "data_type": "file",
                    "label": "plate",
                    "path": "plate.csv",
                    "ownership_info": {"experiment_id": eid},
                }
            )
        },
        files={"files": ("plate.csv", content, "text/csv")},
        timeout=10,
    )
    assert stored.status_code == 200, stored.text
    file_id = stored.json()["_id"]
    wait_for(
        lambda: any(
            p["_id"] == file_id for p in lab_get(lab_server, f"experiment/{eid}/datapoints").json()
        ),
        10,
        "the file data point in the experiment's data points",
    )
    download = lab_get(lab_server, f"experiment/{eid}/datapoints/{file_id}/value")
    assert download.status_code == 200 and download.content == content
    other = lab_get(lab_server, f"experiment/{eid}/datapoints/01JC0000000000000000000007/value")
    assert other.status_code == 404 and other.json()["error"]["field"] == "datapoint_id"

    # a resource the experiment owns on the Resource Manager
    added = httpx.post(
        f"{madsci_lab.url('resource')}/resource/add",
        json={
            "resource_name": "buffer_A",
            "base_type": "consumable",
            "quantity": 45,
            "capacity": 100,
            "owner": {"experiment_id": eid},
        },
        timeout=10,
    )
    assert added.status_code == 200, added.text
    resources = wait_for(
        lambda: lab_get(lab_server, f"experiment/{eid}/lab/resources").json(),
        10,
        "the experiment's resource",
    )
    assert [r["resource_name"] for r in resources] == ["buffer_A"]

    # the Event Manager's events of the experiment's workflow (logged by the workcell)
    wait_until(
        lambda: lab_get(lab_server, f"experiment/{eid}/lab/events").json(),
        lambda evs: any(
            (e.get("event_data") or {}).get("workflow_id") == workflow["workflow_id"] for e in evs
        ),
        15,
        "the workflow's events",
    )
    record = lab_get(lab_server, f"experiment/{eid}/lab").json()
    assert {name: s["state"] for name, s in record.items()} == {
        "workflows": "ok",
        "datapoints": "ok",
        "resources": "ok",
        "events": "ok",
    }
    assert all(s["read_at"] for s in record.values())

    report = lab_get(lab_server, f"experiment/{eid}/report").json()
    assert [w["workflow_id"] for w in report["lab"]["workflows"]["items"]] == [
        workflow["workflow_id"]
    ]
    assert [st["status"] for st in report["lab"]["workflows"]["items"][0]["steps"]] == [
        "succeeded"
    ] * 3
    assert file_id in {p["_id"] for p in report["lab"]["datapoints"]["items"]}
    assert report["lab"]["workflows"]["read_at"]
    markdown = lab_get(lab_server, f"experiment/{eid}/report?format=md").text
    assert "### Workflows" in markdown and workflow["workflow_id"] in markdown
    assert "buffer_A" in markdown and "B2x" in markdown
    html = lab_get(lab_server, f"experiment/{eid}/report?format=html").text
    assert "<h3>Workflows</h3>" in html and workflow["workflow_id"] in html

    # the experiment page in Chromium: the workflow with its steps, the data points, the file
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{lab_server.url}ui/experiments/{eid}")
    WebDriverWait(browser, 15).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#lab-workflows"))
    )
    box = browser.find_element(By.CSS_SELECTOR, f"[data-workflow='{workflow['workflow_id']}']")
    assert "completed" in box.text and box.text.count("succeeded") == 3
    rows = browser.find_elements(By.CSS_SELECTOR, "#lab-datapoints tr[data-datapoint]")
    assert len(rows) == 4
    link = browser.find_element(By.CSS_SELECTOR, "#lab-datapoints a[download]")
    assert link.text.endswith("plate.csv")  # the Data Manager prefixes its id
    assert link.get_attribute("href").endswith(f"/experiment/{eid}/datapoints/{file_id}/value")
    assert browser.find_elements(By.CSS_SELECTOR, "#lab-datapoints svg")  # numeric values
    stamps = browser.find_elements(By.CSS_SELECTOR, "[data-lab-state]")
    assert {el.get_attribute("data-lab-state") for el in stamps} == {"ok"}
    browser.save_screenshot(str(tmp_path / "experiment-page.png"))
    if os.environ.get("LABLEDGER_KEEP_SCREENSHOT"):
        browser.save_screenshot(os.environ["LABLEDGER_KEEP_SCREENSHOT"])


def test_madsci_experiment_script_runs_a_workflow_whose_record_labledger_shows(
    lab_server: LiveServer, madsci_lab: MadsciLab, tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_")}
    env.update(madsci_lab.client_env())
    env["EXPERIMENT_SERVER_URL"] = lab_server.url
    script = HERE / "madsci_experiment_script.py"
    done = subprocess.run(
        [str(madsci_lab.python), str(script), "--out", str(out), "--node", "sim2"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert out.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert "raised" not in report, report
    assert report["returned"]["ok"] is True and report["final_status"] == "completed"
    eid, wid = report["experiment_id"], report["returned"]["workflow_id"]

    [workflow] = lab_get(lab_server, f"experiment/{eid}/workflows").json()
    assert workflow["workflow_id"] == wid and workflow["status"]["completed"] is True
    points = lab_get(lab_server, f"experiment/{eid}/datapoints").json()
    assert sorted(p["value"].get("sample", "") for p in points) == ["", "C3", "C4"]

    # the Event Manager has what labledger forwarded and what the script logged, both of it
    def both() -> bool:
        events = lab_get(lab_server, f"experiment/{eid}/lab/events").json()
        kinds = {e["event_type"] for e in events}
        logged = {(e.get("event_data") or {}).get("event_type") for e in events}
        return "experiment_create" in kinds and "experiment_complete" in logged

    wait_for(both, 15, "forwarded and logged events of the experiment on the Event Manager")


def test_pause_continue_and_cancel_reach_the_workflow(
    lab_server: LiveServer, madsci_lab: MadsciLab
) -> None:
    workcell = Workcell(madsci_lab.url("workcell"))
    with ExperimentClient(lab_server.url) as client:
        eid = client.start_experiment({"experiment_name": "control"}).experiment_id
        wid = workcell.submit(slow_workflow("sim2"), experiment_id=eid)["workflow_id"]
        wait_for(lambda: workcell.get(wid)["status"]["running"], 30, "the workflow running")

        client.pause_experiment(eid)
        wait_for(lambda: workcell.get(wid)["status"]["paused"], 5, "the workflow paused")
        [paused] = wait_for(lambda: control_events(client, eid), 5, "a workflow_control event")
        assert paused["action"] == "pause" and paused["workflows"][wid].startswith("paused")
        # paused before its next step: the running step ends, the next does not start
        wait_for(lambda: workcell.get(wid)["steps"][0]["status"] == "succeeded", 10, "step 1 ended")
        time.sleep(1.0)  # a paused workflow stays put (the scheduler ticks every 0.5 s)
        assert workcell.get(wid)["steps"][1]["status"] == "not_started"

        client.continue_experiment(eid)
        wait_for(lambda: not workcell.get(wid)["status"]["paused"], 10, "the workflow resumed")
        wait_for(lambda: workcell.get(wid)["steps"][1]["status"] == "running", 10, "step 2 running")

        client.cancel_experiment(eid)
        wait_for(lambda: workcell.get(wid)["status"]["cancelled"], 5, "the workflow cancelled")
        done = wait_until(
            lambda: control_events(client, eid),
            lambda evs: len(evs) == 3,
            5,
            "three workflow_control events",
        )
        actions = [e["action"] for e in done]
        assert actions == ["pause", "resume", "cancel"]
    workcell.close()


def test_pausing_and_cancelling_a_campaign_reach_its_experiments_workflows(
    lab_server: LiveServer, madsci_lab: MadsciLab
) -> None:
    workcell = Workcell(madsci_lab.url("workcell"))
    with ExperimentClient(lab_server.url) as client:
        cid = client.create_campaign({"name": "held", "design": {"experiment_name": "h"}})
        campaign_id = cid.campaign_id
        exp = client.start_experiment({"experiment_name": "held"}, campaign_id=campaign_id)
        wid = workcell.submit(
            slow_workflow("sim4"), experiment_id=exp.experiment_id, campaign_id=campaign_id
        )["workflow_id"]
        wait_for(lambda: workcell.get(wid)["status"]["running"], 30, "the workflow running")
        client.pause_campaign(campaign_id)
        wait_for(lambda: workcell.get(wid)["status"]["paused"], 5, "the workflow paused")
        client.cancel_campaign(campaign_id)
        wait_for(lambda: workcell.get(wid)["status"]["cancelled"], 5, "the workflow cancelled")
        assert [
            w["workflow_id"]
            for w in lab_get(lab_server, f"campaign/{campaign_id}/workflows").json()
        ] == [wid]
    workcell.close()


def test_a_pause_made_while_the_workcell_is_stopped_reaches_it_when_it_is_back(
    lab_server: LiveServer, madsci_lab: MadsciLab
) -> None:
    workcell = Workcell(madsci_lab.url("workcell"))
    with ExperimentClient(lab_server.url, timeout=30) as client:
        eid = client.start_experiment({"experiment_name": "control"}).experiment_id
        wid = workcell.submit(slow_workflow("sim3"), experiment_id=eid)["workflow_id"]
        wait_for(lambda: workcell.get(wid)["status"]["running"], 30, "the workflow running")
        with stopped(madsci_lab.processes["workcell"].process):
            assert client.pause_experiment(eid).status.value == "paused"
            page = lab_get(lab_server, f"ui/experiments/{eid}")
            assert page.status_code == 200
        wait_for(lambda: workcell.get(wid)["status"]["paused"], 15, "the workflow paused")
        client.cancel_experiment(eid)
        wait_for(lambda: workcell.get(wid)["status"]["cancelled"], 5, "the workflow cancelled")
    workcell.close()


def test_a_campaign_drained_by_two_workers_shows_its_six_workflows(
    lab_server: LiveServer, madsci_lab: MadsciLab, tmp_path: Path
) -> None:
    with ExperimentClient(lab_server.url) as client:
        campaign = client.create_campaign(
            {
                "name": "plate",
                "design": {"experiment_name": "measure"},
                "sweep": {"grid": {"sample": ["A1", "A2", "A3", "B1", "B2", "B3"]}},
            }
        )
        cid = campaign.campaign_id
        workers = []
        try:
            for name, node in (("w1", "sim1"), ("w4", "sim4")):
                env = {k: v for k, v in os.environ.items() if not k.startswith("EXPERIMENT_")}
                env["WORKCELL_SERVER_URL"] = madsci_lab.url("workcell")
                env["LAB_NODE"] = node
                with (tmp_path / f"{name}.log").open("wb") as log:
                    worker = subprocess.Popen(
                        [
                            *serve_command(),
                            "worker",
                            "lab_apps:Measure",
                            "--server-url",
                            lab_server.url,
                            "--worker-id",
                            name,
                            "--campaign",
                            cid,
                            "--poll",
                            "0.2",
                            "--path",
                            str(HERE),
                        ],
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                    )
                workers.append(worker)
            for proc in workers:
                proc.wait(timeout=240)
        finally:
            for proc in workers:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        logs = "\n".join((tmp_path / f"{n}.log").read_text() for n in ("w1", "w4"))
        assert client.get_campaign(cid).status.value == "completed", logs
        table = client.campaign_results(cid)
        statuses = [row["results"].get("workflow_status") for row in table["rows"]]
        assert statuses == ["completed"] * 6, (table["rows"], logs)

    workflows = lab_get(lab_server, f"campaign/{cid}/workflows")
    assert workflows.headers["X-Lab-State"] == "ok"
    assert len(workflows.json()) == 6
    assert {w["ownership_info"]["experiment_id"] for w in workflows.json()} == set(
        campaign.experiment_ids or []
    )
    points = lab_get(lab_server, f"campaign/{cid}/datapoints").json()
    assert len(points) == 18

    report = lab_get(lab_server, f"campaign/{cid}/report").json()
    assert len(report["lab"]["workflows"]["items"]) == 6
    assert len(report["lab"]["datapoints"]["items"]) == 18
    markdown = lab_get(lab_server, f"campaign/{cid}/report?format=md").text
    assert all(w["workflow_id"] in markdown for w in workflows.json())
    # data-point values are columns and axes of the campaign's results
    axis = "datapoint.json_result.absorbance"
    page = lab_get(lab_server, f"ui/campaigns/{cid}?x=parameters.sample&y={axis}").text
    assert f'<option value="{axis}" selected>' in page
    assert page.count("<td>0.") >= 6


def test_with_every_manager_stopped_every_route_and_page_still_answers(
    lab_server: LiveServer, madsci_lab: MadsciLab
) -> None:
    with ExperimentClient(lab_server.url, timeout=60) as client:
        campaign = client.create_campaign(
            {"name": "down", "design": {"experiment_name": "d"}, "sweep": {"grid": {"i": [1]}}}
        )
        cid = campaign.campaign_id
        eid = (campaign.experiment_ids or [])[0]
    managers = [madsci_lab.processes[m].process for m in ("workcell", "data", "resource", "event")]
    paths = json.loads(lab_get(lab_server, "openapi.json").text)["paths"]
    with stopped(*managers):
        # an answer read just before is reused for lab_cache_seconds (stamped when read)
        record = wait_until(
            lambda: lab_get(lab_server, f"experiment/{eid}/lab").json(),
            lambda r: {s["state"] for s in r.values()} == {"unreachable"},
            15,
            "every section unreachable",
        )
        assert all(s["unreachable_since"] for s in record.values())
        listing = lab_get(lab_server, f"experiment/{eid}/workflows")
        assert listing.headers["X-Lab-State"] == "unreachable"
        assert listing.headers["X-Lab-Unreachable-Since"]
        checked = 0
        for path, operations in paths.items():
            if "get" not in operations:
                continue
            filled = path.replace("{experiment_id}", eid).replace("{campaign_id}", cid)
            if "{" in filled:
                continue
            lab_get(lab_server, filled.lstrip("/"))
            checked += 1
        for page in (
            "ui/experiments",
            f"ui/experiments/{eid}",
            f"ui/campaigns/{cid}",
            "ui/campaigns",
        ):
            response = lab_get(lab_server, page)
            assert response.status_code == 200
        assert checked > 20
