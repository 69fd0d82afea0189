"""The campaign management, queue, results, progress and report routes over real HTTP semantics."""

from __future__ import annotations

import time

import blake3
from fastapi.testclient import TestClient

SPEC = {
    "name": "buffer screen",
    "design": {"experiment_name": "titration"},
    "sweep": {"grid": {"ph": [6, 7]}, "list": [{"ph": 9}]},
}


def test_a_sweep_posted_as_a_spec_queues_experiments_that_workers_claim(api: TestClient) -> None:
    created = api.post("/campaigns", json=SPEC)
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert len(campaign["experiment_ids"]) == 3 and campaign["status"] == "planned"
    first = api.post("/queue/claim", json={"worker_id": "w1"})
    assert first.status_code == 200
    exp = first.json()
    # MADSci view: a claimed experiment is in_progress for everybody
    assert (exp["status"], exp["lifecycle_status"], exp["worker_id"]) == (
        "in_progress",
        "in_progress",
        "w1",
    )
    queue = api.get("/queue").json()
    assert [e["_id"] for e in queue["running"]] == [exp["_id"]]
    assert len(queue["queued"]) == 2 and queue["queued"][0]["status"] == "unknown"
    beat = api.post(f"/experiment/{exp['_id']}/heartbeat", json={"worker_id": "w1"})
    assert beat.status_code == 200 and beat.json()["lease_expires_at"] is not None
    stolen = api.post(f"/experiment/{exp['_id']}/heartbeat", json={"worker_id": "w2"})
    assert stolen.status_code == 409 and stolen.json()["error"]["code"] == "lease_lost"
    done = api.post(
        f"/experiment/{exp['_id']}/finish",
        json={
            "worker_id": "w1",
            "status": "failed",
            "error": {"type": "RuntimeError", "message": "pump", "traceback": "Traceback..."},
        },
    )
    assert done.json()["lifecycle_status"] == "failed"
    assert done.json()["metadata"]["error"]["message"] == "pump"
    assert api.get(f"/campaign/{campaign['campaign_id']}").json()["status"] == "active"
    progress = api.get(f"/campaign/{campaign['campaign_id']}/progress").json()
    assert progress["counts"]["queued"] == 2 and progress["counts"]["failed"] == 1
    assert progress["finished"] == 1 and progress["success_rate"] == 0.0


def test_claim_answers_204_when_the_queue_is_empty_or_held(api: TestClient) -> None:
    assert api.post("/queue/claim", json={"worker_id": "w"}).status_code == 204
    campaign = api.post("/campaigns", json=SPEC).json()
    paused = api.post(f"/campaign/{campaign['campaign_id']}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert api.post("/queue/claim", json={"worker_id": "w"}).status_code == 204
    api.post(f"/campaign/{campaign['campaign_id']}/resume")
    assert api.post("/queue/claim", json={"worker_id": "w"}).status_code == 200
    cancelled = api.post(f"/campaign/{campaign['campaign_id']}/cancel").json()
    assert cancelled["status"] == "cancelled"
    again = api.post(f"/campaign/{campaign['campaign_id']}/pause")
    assert again.status_code == 409
    assert "'cancelled'" in again.json()["detail"] and "'paused'" in again.json()["detail"]


def test_spec_and_worker_errors_name_the_field(sqlite_api: TestClient) -> None:
    bad = sqlite_api.post("/campaigns", json={"name": "x", "sweep": {"grid": {"a": [1]}}})
    assert bad.status_code == 422 and "experiment_design" in bad.json()["detail"]
    nameless = sqlite_api.post("/queue/claim", json={})
    assert nameless.status_code == 422 and nameless.json()["error"]["field"] == "worker_id"


def test_values_files_milestones_resources_and_report(sqlite_api: TestClient) -> None:
    api = sqlite_api
    campaign = api.post("/campaigns", json=SPEC).json()
    exp_id = campaign["experiment_ids"][0]
    values = api.post(f"/experiment/{exp_id}/results", json={"values": {"yield": 0.8, "ok": True}})
    assert values.status_code == 200 and {r["name"] for r in values.json()} == {"yield", "ok"}
    content = b"t,signal\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(100_000))
    digest = blake3.blake3(content).hexdigest()
    up = api.post(
        f"/experiment/{exp_id}/files/trace",
        files={"file": ("trace.csv", content, "text/csv")},
        data={"digest": digest},
    )
    assert up.status_code == 201, up.text
    assert (up.json()["digest"], up.json()["size"]) == (digest, len(content))
    down = api.get(f"/experiment/{exp_id}/files/trace")
    assert down.content == content and down.headers["x-content-blake3"] == digest
    assert "trace.csv" in down.headers["content-disposition"]
    corrupt = api.post(
        f"/experiment/{exp_id}/files/other",
        files={"file": ("o.bin", b"abc", "application/octet-stream")},
        data={"digest": digest},
    )
    assert corrupt.status_code == 422 and corrupt.json()["error"]["field"] == "digest"
    assert api.get(f"/experiment/{exp_id}/results/other").status_code == 404
    bad_name = api.post(
        f"/experiment/{exp_id}/files/..%2Fetc", files={"file": ("x", b"x", "text/plain")}
    )
    assert bad_name.status_code in (404, 422)
    assert (
        api.post(
            f"/experiment/{exp_id}/milestones",
            json={"name": "mixed", "progress": 0.5, "data": {"step": 3}},
        ).status_code
        == 201
    )
    assert api.get(f"/experiment/{exp_id}/milestones").json()[-1]["data"] == {"step": 3}
    assert api.post(f"/experiment/{exp_id}/progress", json={"progress": 1.5}).status_code == 422
    api.post(f"/experiment/{exp_id}/resources", json=[{"resource_id": "S-1", "quantity": 2}])
    used = api.get("/resources/S-1/experiments").json()
    assert used["experiment_ids"] == [exp_id]

    report = api.get(f"/campaign/{campaign['campaign_id']}/report").json()
    assert report["counts"]["queued"] == 3 and report["counts"]["total"] == 3
    row = next(r for r in report["rows"] if r["experiment_id"] == exp_id)
    assert row["results"]["yield"] == 0.8 and row["results"]["trace"]["digest"] == digest
    md = api.get(f"/campaign/{campaign['campaign_id']}/report?format=md")
    assert md.headers["content-type"].startswith("text/markdown")
    assert "| queued | 3 |" in md.text and "| yield |" in md.text
    html = api.get(f"/campaign/{campaign['campaign_id']}/report?format=html&download=true")
    assert (
        html.text.startswith("<!doctype html>")
        and "attachment" in html.headers["content-disposition"]
    )
    summary = api.get(f"/experiment/{exp_id}/report?format=md").text
    assert "## Milestones" in summary and "mixed" in summary and "S-1" in summary
    assert api.get(f"/campaign/{campaign['campaign_id']}/report?format=pdf").status_code == 422


def test_report_html_escapes_user_text(sqlite_api: TestClient) -> None:
    spec = {**SPEC, "name": "<script>alert(1)</script>"}
    campaign = sqlite_api.post("/campaigns", json=spec).json()
    html = sqlite_api.get(f"/campaign/{campaign['campaign_id']}/report?format=html").text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_event_log_of_a_campaign_reads_in_order(sqlite_api: TestClient) -> None:
    campaign = sqlite_api.post("/campaigns", json=SPEC).json()
    claimed = sqlite_api.post("/queue/claim", json={"worker_id": "w"}).json()
    events = sqlite_api.get("/events", params={"campaign_id": campaign["campaign_id"]}).json()
    ids = [e["event_id"] for e in events]
    assert ids == sorted(ids)
    types = [e["type"] for e in events]
    assert types[0] == "campaign_created" and types.count("created") == 3
    assert "claimed" in types and types[-1] == "campaign_status_changed"
    mine = sqlite_api.get("/events", params={"experiment_id": claimed["_id"]}).json()
    assert [e["type"] for e in mine] == ["created", "claimed"]


def test_campaign_results_as_csv_for_a_spreadsheet(sqlite_api: TestClient) -> None:
    import csv
    import io

    campaign = sqlite_api.post("/campaigns", json=SPEC).json()
    first = campaign["experiment_ids"][0]
    sqlite_api.post(f"/experiment/{first}/results", json={"values": {"yield": 0.5, "tags": [1]}})
    answer = sqlite_api.get(f"/campaign/{campaign['campaign_id']}/results?format=csv")
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 3 and rows[0]["experiment_id"] == first
    assert rows[0]["param.ph"] == "6" and rows[0]["result.yield"] == "0.5"
    assert rows[0]["result.tags"] == "[1]" and rows[1]["result.yield"] == ""
    table = sqlite_api.get(f"/campaign/{campaign['campaign_id']}/results").json()
    assert table["result_names"] == ["tags", "yield"] and len(table["rows"]) == 3
    assert sqlite_api.get("/campaign/01JC0000000000000000000000/results").status_code == 404


def test_every_report_of_a_worker_that_lost_its_lease_answers_lease_lost(api: TestClient) -> None:
    created = api.post(
        "/experiment", json={"experiment_design": {"experiment_name": "e"}, "status": "queued"}
    ).json()
    exp_id = created["_id"]
    first = api.post("/queue/claim", json={"worker_id": "A", "lease_seconds": 0.05})
    assert first.status_code == 200
    deadline = time.monotonic() + 30
    while (second := api.post("/queue/claim", json={"worker_id": "B"})).status_code != 200:
        assert time.monotonic() < deadline, second.text  # A's lease ends, B gets it
        time.sleep(0.05)
    assert second.json()["_id"] == exp_id
    api.post(f"/experiment/{exp_id}/results", json={"values": {"y": 2}, "worker_id": "B"})
    done = api.post(f"/experiment/{exp_id}/finish", json={"status": "completed", "worker_id": "B"})
    assert done.status_code == 200

    late = [
        api.post(f"/experiment/{exp_id}/finish", json={"status": "completed", "worker_id": "A"}),
        api.post(f"/experiment/{exp_id}/finish", json={"status": "failed", "worker_id": "A"}),
        api.post(f"/experiment/{exp_id}/results", json={"values": {"y": 1}, "worker_id": "A"}),
        api.post(f"/experiment/{exp_id}/milestones", json={"name": "m", "worker_id": "A"}),
        api.post(
            f"/experiment/{exp_id}/files/raw",
            files={"file": ("raw.txt", b"from A")},
            data={"worker_id": "A"},
        ),
    ]
    for answer in late:
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"]["code"] == "lease_lost", answer.text
    record = api.get(f"/experiment/{exp_id}").json()
    assert record["lifecycle_status"] == "completed"
    assert [r["value"] for r in api.get(f"/experiment/{exp_id}/results").json()] == [2]
    assert api.get(f"/experiment/{exp_id}/milestones").json() == []
    # B retrying its own finish is still safe
    again = api.post(f"/experiment/{exp_id}/finish", json={"status": "completed", "worker_id": "B"})
    assert again.status_code == 200
