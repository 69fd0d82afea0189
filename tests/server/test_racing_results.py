"""Results posted under one name at the same time, over real HTTP on both backends: the last
write wins and nobody gets a 500; racing retries that share an Idempotency-Key all get the
first answer."""

from __future__ import annotations

import threading
import uuid

import httpx

from labledger_fixtures import LiveServerFactory

RACERS = 16


def _race(
    url: str, bodies: list[dict[str, object]], headers: dict[str, str]
) -> list[httpx.Response]:
    answers: list[httpx.Response] = []
    barrier = threading.Barrier(len(bodies))

    def post(body: dict[str, object]) -> None:
        with httpx.Client(timeout=60) as http:
            barrier.wait()
            answers.append(http.post(url, json=body, headers=headers))

    threads = [threading.Thread(target=post, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_same_name_results_posted_at_once_all_land_and_the_last_one_wins(
    live_server: LiveServerFactory, db_url: str
) -> None:
    server = live_server(db_url)
    with httpx.Client(base_url=server.url) as http:
        exp_id = http.post(
            "experiment", json={"experiment_design": {"experiment_name": "r"}}
        ).json()["_id"]
        url = f"{server.url}experiment/{exp_id}/results"
        for _round in range(3):
            answers = _race(url, [{"values": {"yield": n}} for n in range(RACERS)], {})
            assert [a.status_code for a in answers] == [200] * RACERS, [a.text for a in answers]
            results = http.get(f"experiment/{exp_id}/results").json()
            assert [r["name"] for r in results] == ["yield"]
            # the one kept is the one whose event comes last in the log
            logged = [
                e["data"]["value"]
                for e in http.get("events", params={"experiment_id": exp_id}).json()
                if e["type"] == "result_added"
            ]
            assert results[0]["value"] == logged[-1]


def test_racing_retries_with_one_idempotency_key_replay_the_first_answer(
    live_server: LiveServerFactory, db_url: str
) -> None:
    server = live_server(db_url)
    with httpx.Client(base_url=server.url) as http:
        exp_id = http.post(
            "experiment", json={"experiment_design": {"experiment_name": "r"}}
        ).json()["_id"]
        url = f"{server.url}experiment/{exp_id}/results"
        key = {"Idempotency-Key": str(uuid.uuid4())}
        answers = _race(url, [{"values": {"yield": 7}}] * RACERS, key)
        assert [a.status_code for a in answers] == [200] * RACERS, [a.text for a in answers]
        assert len({a.text for a in answers}) == 1
        assert sum(a.headers.get("Idempotent-Replayed") == "true" for a in answers) == RACERS - 1
        added = [
            e
            for e in http.get("events", params={"experiment_id": exp_id}).json()
            if e["type"] == "result_added"
        ]
        assert len(added) == 1
