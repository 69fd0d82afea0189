"""The scheduling queue on real SQLite and PostgreSQL: claims, leases, sweeps, outcomes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from labledger.core.lab import Lab
from labledger.core.lifecycle import ExperimentStatus
from labledger.core.models import EventType, ExperimentRegistration
from labledger.core.queue import ClaimRequest, FinishRequest, HeartbeatRequest, ReleaseRequest
from labledger.core.records import ErrorInfo
from labledger.errors import IllegalTransition, LeaseLost
from labledger.storage.engine import create_db_engine
from labledger.storage.schema import ensure_ready
from labledger.storage.sql import SqlStore

S = ExperimentStatus


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def lab(db_url: str, clock: Clock) -> Iterator[Lab]:
    engine = create_db_engine(db_url)
    ensure_ready(engine, db_url)
    yield Lab(SqlStore(engine), lease_seconds=30, max_attempts=2, clock=clock)
    engine.dispose()


def queued(lab: Lab, name: str = "run", **kw: object) -> str:
    reg = ExperimentRegistration.model_validate(
        {"experiment_design": {"experiment_name": name}, "status": "queued", **kw}
    )
    return lab.experiments.create_experiment(reg).experiment_id


def test_claims_take_highest_priority_then_oldest_and_skip_not_yet_due(
    lab: Lab, clock: Clock
) -> None:
    low = queued(lab, "low")
    clock.advance(1)
    high = queued(lab, "high", priority=5)
    clock.advance(1)
    later = queued(lab, "later", priority=9, not_before="2030-01-01T00:00:00Z")
    first = lab.queue.claim(ClaimRequest(worker_id="w1"))
    second = lab.queue.claim(ClaimRequest(worker_id="w1"))
    assert first is not None and second is not None
    assert [first.experiment_id, second.experiment_id] == [high, low]
    assert lab.queue.claim(ClaimRequest(worker_id="w1")) is None
    assert lab.experiments.get_experiment(later).status is S.QUEUED
    assert first.worker_id == "w1" and first.attempts == 1 and first.started_at == clock.now
    assert first.lease_expires_at == clock.now + timedelta(seconds=30)
    claimed = [e for e in lab.store.events.find(experiment_id=high) if e.type is EventType.CLAIMED]
    assert [(e.from_status, e.to_status, e.data["worker_id"]) for e in claimed] == [
        ("queued", "in_progress", "w1")
    ]


def test_parallel_claimers_never_get_the_same_experiment(lab: Lab) -> None:
    ids = {queued(lab, f"e{i}") for i in range(24)}
    got: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        mine: list[str] = []
        try:
            while (exp := lab.queue.claim(ClaimRequest(worker_id=name))) is not None:
                mine.append(exp.experiment_id)
        except BaseException as exc:
            errors.append(exc)
        got[name] = mine

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    claimed = [i for mine in got.values() for i in mine]
    assert sorted(claimed) == sorted(ids)  # every one claimed, none twice


def test_expired_lease_requeues_then_fails_after_max_attempts(lab: Lab, clock: Clock) -> None:
    exp_id = queued(lab)
    assert lab.queue.claim(ClaimRequest(worker_id="w1")) is not None
    clock.advance(31)
    again = lab.queue.claim(ClaimRequest(worker_id="w2"))  # the claim sweeps first
    assert again is not None and again.experiment_id == exp_id
    assert (again.worker_id, again.attempts) == ("w2", 2)
    clock.advance(31)
    swept = lab.queue.sweep_expired()
    assert [e.experiment_id for e in swept] == [exp_id]
    failed = lab.experiments.get_experiment(exp_id)
    assert failed.status is S.FAILED and failed.ended_at == clock.now
    assert failed.metadata["error"]["type"] == "LeaseExpired"
    expiries = [
        e for e in lab.store.events.find(experiment_id=exp_id) if e.type is EventType.LEASE_EXPIRED
    ]
    assert [(e.data["worker_id"], e.to_status) for e in expiries] == [
        ("w1", "queued"),
        ("w2", "failed"),
    ]


def test_heartbeat_renews_the_lease_and_a_stale_worker_is_told_it_lost_it(
    lab: Lab, clock: Clock
) -> None:
    exp_id = queued(lab)
    lab.queue.claim(ClaimRequest(worker_id="w1"))
    clock.advance(20)
    beat = lab.queue.heartbeat(exp_id, HeartbeatRequest(worker_id="w1"))
    assert beat.lease_expires_at == clock.now + timedelta(seconds=30)
    clock.advance(20)
    assert lab.queue.sweep_expired() == []  # renewed, so not expired
    with pytest.raises(LeaseLost) as info:
        lab.queue.heartbeat(exp_id, HeartbeatRequest(worker_id="intruder"))
    assert "w1" in info.value.message
    clock.advance(31)
    lab.queue.sweep_expired()
    with pytest.raises(LeaseLost):
        lab.queue.finish(exp_id, FinishRequest(worker_id="w1"))
    assert lab.experiments.get_experiment(exp_id).status is S.QUEUED


def test_finish_records_a_failure_with_its_traceback_and_is_idempotent(lab: Lab) -> None:
    exp_id = queued(lab)
    lab.queue.claim(ClaimRequest(worker_id="w1"))
    error = ErrorInfo(type="ValueError", message="bad pH", traceback="Traceback ...\nValueError")
    request = FinishRequest(status="failed", worker_id="w1", error=error)
    done = lab.queue.finish(exp_id, request)
    assert done.status is S.FAILED and done.metadata["error"]["message"] == "bad pH"
    assert lab.queue.finish(exp_id, request).version == done.version  # retry changes nothing
    last = lab.store.events.find(experiment_id=exp_id)[-1]
    assert (last.from_status, last.to_status) == ("in_progress", "failed")
    assert last.data["error"]["traceback"].endswith("ValueError")
    with pytest.raises(IllegalTransition):
        lab.queue.finish(exp_id, FinishRequest(status="completed", worker_id="w1"))


def test_release_gives_the_experiment_back_to_the_queue(lab: Lab) -> None:
    exp_id = queued(lab)
    lab.queue.claim(ClaimRequest(worker_id="w1"))
    back = lab.queue.release(exp_id, ReleaseRequest(worker_id="w1", reason="shutting down"))
    assert (back.status, back.worker_id) == (S.QUEUED, None)
    reclaimed = lab.queue.claim(ClaimRequest(worker_id="w2"))
    assert reclaimed is not None and reclaimed.attempts == 2


def test_a_paused_experiment_whose_worker_vanished_is_requeued_when_continued(
    lab: Lab, clock: Clock
) -> None:
    from labledger.core.lifecycle import Action

    exp_id = queued(lab)
    lab.queue.claim(ClaimRequest(worker_id="w1"))
    lab.experiments.apply_action(exp_id, Action.PAUSE)
    clock.advance(31)
    lab.queue.sweep_expired()
    orphan = lab.experiments.get_experiment(exp_id)
    assert (orphan.status, orphan.worker_id) == (S.PAUSED, None)
    lab.experiments.apply_action(exp_id, Action.CONTINUE)
    assert lab.experiments.get_experiment(exp_id).status is S.QUEUED


def test_a_worker_that_lost_its_lease_cannot_record_results(lab: Lab, clock: Clock) -> None:
    exp_id = queued(lab)
    lab.queue.claim(ClaimRequest(worker_id="w1"))
    clock.advance(31)
    lab.queue.claim(ClaimRequest(worker_id="w2"))  # the sweep requeues, w2 takes it
    with pytest.raises(LeaseLost):
        lab.results.add_values(exp_id, {"yield": 0.1}, worker_id="w1")
    lab.results.add_values(exp_id, {"yield": 0.9}, worker_id="w2")
    assert [(r.name, r.value) for r in lab.results.list_results(exp_id)] == [("yield", 0.9)]


def test_a_worker_that_lost_its_lease_is_refused_whatever_state_follows(
    lab: Lab, clock: Clock
) -> None:
    from labledger.core.records import MilestoneCreate

    exp_id = queued(lab)
    lab.queue.claim(ClaimRequest(worker_id="A"))
    clock.advance(31)
    lab.queue.claim(ClaimRequest(worker_id="B"))  # the sweep requeues, B takes it
    lab.queue.finish(exp_id, FinishRequest(status="completed", worker_id="B"))
    with pytest.raises(LeaseLost):
        lab.queue.finish(exp_id, FinishRequest(status="completed", worker_id="A"))
    with pytest.raises(LeaseLost):
        lab.results.add_values(exp_id, {"y": 1}, worker_id="A")
    with pytest.raises(LeaseLost):
        lab.results.add_milestone(exp_id, MilestoneCreate(name="m", worker_id="A"))
    with pytest.raises(LeaseLost):
        lab.results.add_file(
            exp_id, "raw", digest="0" * 64, size=1, media_type=None, filename=None, worker_id="A"
        )
    assert lab.results.list_results(exp_id) == [] and lab.results.list_milestones(exp_id) == []


def test_a_worker_whose_experiment_the_sweep_failed_is_told_it_lost_the_lease(
    lab: Lab, clock: Clock
) -> None:
    exp_id = queued(lab)
    for worker in ("A", "B"):  # max_attempts=2: the second expiry fails it
        assert lab.queue.claim(ClaimRequest(worker_id=worker)) is not None
        clock.advance(31)
        lab.queue.sweep_expired()
    assert lab.experiments.get_experiment(exp_id).status is S.FAILED
    with pytest.raises(LeaseLost):
        lab.queue.finish(exp_id, FinishRequest(status="failed", worker_id="B"))


def test_the_store_refuses_a_report_once_the_lease_moved(lab: Lab, clock: Clock) -> None:
    """The holder is checked again in the writing transaction, not only before it."""
    from labledger.core.records import Result, ResultKind

    exp_id = queued(lab)
    lab.queue.claim(ClaimRequest(worker_id="A"))
    clock.advance(31)
    lab.queue.claim(ClaimRequest(worker_id="B"))
    value = Result(experiment_id=exp_id, name="y", kind=ResultKind.VALUE, value=1)
    with pytest.raises(LeaseLost):
        lab.store.records.put_results([value], None, [], worker_id="A")
    assert lab.store.records.put_results([value], None, [], worker_id="B")[0].value == 1
