"""``labledger push`` sends runs to a real server, idempotently, files by digest."""

from __future__ import annotations

from pathlib import Path

import httpx

from labledger_fixtures import LiveServerFactory
from runner.recorder_support import labledger, labledger_json, make_experiment

RUN = 'mkdir -p results && python3 -c "print(\'x\' * 5000)" > results/big.txt && echo "lr=$lr"\n'


def test_push_sends_records_and_files_once(tmp_path: Path, live_server: LiveServerFactory) -> None:
    exp = make_experiment(tmp_path / "exp", run=RUN)
    first = labledger_json(
        exp, "new", "--name", "base", "--hypothesis", "lr matters", "--var", "lr=0.1"
    )
    labledger(exp, "run")
    labledger(exp, "end", "--observations", "it did")
    second = labledger_json(exp, "new", "--var", "lr=0.2")
    labledger(exp, "run")
    server = live_server()

    pushed = labledger_json(exp, "push", "--server", server.url)
    assert sorted((p["number"], p["outcome"]) for p in pushed) == [(1, "new"), (2, "new")]
    assert all(p["blobs_sent"] > 0 for p in pushed)

    with httpx.Client(base_url=server.url) as http:
        got = http.get(f"experiment/{first['run_id']}").json()
        assert got["_id"] == first["run_id"] and got["lifecycle_status"] == "completed"
        assert got["run_name"] == "base" and got["parameters"] == {"lr": 0.1}
        recorder = got["metadata"]["recorder"]
        assert recorder["hypothesis"] == "lr matters" and recorder["observations"] == "it did"
        output = next(e for e in recorder["files"]["outputs"] if e["path"].endswith("big.txt"))
        blob = http.get(f"blobs/{output['digest']}")
        assert blob.status_code == 200 and blob.content == b"x" * 5000 + b"\n"
        events = http.get(f"experiment/{first['run_id']}/events").json()
        assert events[0]["to_status"] in {"planned", "in_progress"}
        assert events[-1]["data"].get("imported") is True

    again = labledger_json(exp, "push", "--server", server.url)
    assert {p["outcome"] for p in again} == {"unchanged"}
    assert sum(p["blobs_sent"] for p in again) == 0

    labledger(exp, "end", "--observations", "second one done")
    after_end = {p["number"]: p for p in labledger_json(exp, "push", "--server", server.url)}
    assert after_end[2]["outcome"] == "updated" and after_end[1]["outcome"] == "unchanged"
    with httpx.Client(base_url=server.url) as http:
        got = http.get(f"experiment/{second['run_id']}").json()
        assert got["metadata"]["recorder"]["observations"] == "second one done"


def test_push_to_nowhere_says_what_to_do(tmp_path: Path) -> None:
    exp = make_experiment(tmp_path / "exp", run="echo hi\n")
    labledger_json(exp, "new")
    labledger(exp, "run")
    failed = labledger(exp, "push", "--server", "http://127.0.0.1:9", ok=False)
    assert failed.returncode == 1
    assert "Cannot reach" in failed.stderr and "labledger serve" in failed.stderr


LARGE = "mkdir -p results && head -c 12582912 /dev/urandom > results/big.bin\n"


def test_push_sends_outputs_larger_than_the_body_limit(
    tmp_path: Path, live_server: LiveServerFactory
) -> None:
    # 12 MiB: over max_body_bytes (8 MiB), far under max_upload_bytes (2 GiB), default settings
    exp = make_experiment(tmp_path / "exp", run=LARGE)
    run = labledger_json(exp, "new")
    labledger(exp, "run")
    server = live_server()

    pushed = labledger_json(exp, "push", "--server", server.url)

    assert [p["outcome"] for p in pushed] == ["new"] and pushed[0]["bytes_sent"] > 12_000_000
    with httpx.Client(base_url=server.url) as http:
        recorder = http.get(f"experiment/{run['run_id']}").json()["metadata"]["recorder"]
        output = next(e for e in recorder["files"]["outputs"] if e["path"].endswith("big.bin"))
        blob = http.get(f"blobs/{output['digest']}")
        assert (
            blob.status_code == 200 and blob.content == (exp / "results" / "big.bin").read_bytes()
        )


def test_a_refused_file_is_named_with_its_run(
    tmp_path: Path, live_server: LiveServerFactory
) -> None:
    exp = make_experiment(tmp_path / "exp", run=LARGE)
    run = labledger_json(exp, "new")
    labledger(exp, "run")
    server = live_server(env={"EXPERIMENT_MAX_UPLOAD_BYTES": "1000000"})

    failed = labledger(exp, "push", "--server", server.url, ok=False)

    assert failed.returncode == 1
    message = failed.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert f"Run 1 ({run['run_id']})" in message and "outputs/big.bin" in message
    assert "max_upload_bytes" in message
