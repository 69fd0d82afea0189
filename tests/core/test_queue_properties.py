"""Property test: any interleaving of workers, leases, pauses and cancels keeps the queue sound.

Random sequences of claims, heartbeats, outcomes, clock jumps, sweeps and campaign or experiment
controls run against a real SQLite database. Afterwards, for every experiment: its event log is
a chain of transitions the lifecycle table allows, it ends in the stored status, every claim
is counted in ``attempts``, and only an experiment held by a worker carries a lease.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labledger.core.lab import Lab
from labledger.core.lifecycle import TRANSITIONS, Action, ExperimentStatus
from labledger.core.queue import ClaimRequest, FinishRequest, HeartbeatRequest
from labledger.core.specs import CampaignSpec
from labledger.errors import Conflict
from labledger.storage.engine import create_db_engine
from labledger.storage.schema import ensure_ready
from labledger.storage.sql import SqlStore

S = ExperimentStatus
WORKERS = ["w0", "w1", "w2"]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 5, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, Clock]]:
    path: Path = tmp_path_factory.mktemp("props") / "q.sqlite3"
    url = f"sqlite:///{path}"
    engine = create_db_engine(url)
    ensure_ready(engine, url)
    clock = Clock()
    yield Lab(SqlStore(engine), lease_seconds=10, max_attempts=3, clock=clock), clock
    engine.dispose()


step = st.one_of(
    st.tuples(st.just("claim"), st.sampled_from(WORKERS)),
    st.tuples(st.just("beat"), st.sampled_from(WORKERS), st.integers(0, 2)),
    st.tuples(
        st.just("finish"),
        st.sampled_from(WORKERS),
        st.integers(0, 2),
        st.sampled_from(["completed", "failed", "cancelled"]),
    ),
    st.tuples(st.just("wait"), st.sampled_from([1, 6, 11, 25])),
    st.tuples(st.just("sweep")),
    st.tuples(st.just("campaign"), st.sampled_from(["pause", "resume", "cancel"])),
    st.tuples(st.just("action"), st.integers(0, 2), st.sampled_from(["pause", "continue"])),
)


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=25))
def test_any_interleaving_keeps_the_queue_sound(
    world: tuple[Lab, Clock], steps: list[tuple[object, ...]]
) -> None:
    lab, clock = world
    campaign = lab.campaigns.create(
        CampaignSpec.model_validate(
            {"name": "p", "design": {"experiment_name": "p"}, "sweep": {"list": [{}, {}, {}]}}
        )
    )
    cid = campaign.campaign_id
    ids = list(campaign.experiment_ids or [])
    for item in steps:
        kind = item[0]
        with contextlib.suppress(Conflict):  # refused moves (409) are part of the game
            if kind == "claim":
                lab.queue.claim(ClaimRequest(worker_id=str(item[1]), campaign_id=cid))
            elif kind == "beat":
                lab.queue.heartbeat(
                    ids[int(str(item[2]))], HeartbeatRequest(worker_id=str(item[1]))
                )
            elif kind == "finish":
                lab.queue.finish(
                    ids[int(str(item[2]))],
                    FinishRequest(status=item[3], worker_id=str(item[1])),
                )
            elif kind == "wait":
                clock.now += timedelta(seconds=int(str(item[1])))
            elif kind == "sweep":
                lab.queue.sweep_expired()
            elif kind == "campaign":
                getattr(lab.campaigns, str(item[1]))(cid)
            elif kind == "action":
                lab.experiments.apply_action(ids[int(str(item[1]))], Action(str(item[2])))

    for exp_id in ids:
        exp = lab.store.experiments.get(exp_id)
        log = [e for e in lab.store.events.find(experiment_id=exp_id) if e.to_status]
        assert log[0].type.value == "created" and log[0].to_status == "queued"
        for before, after in itertools.pairwise(log):
            assert after.from_status == before.to_status, (before, after)
            if after.from_status is not None and after.from_status != after.to_status:
                assert after.to_status is not None
                assert S(after.to_status) in TRANSITIONS[S(after.from_status)], after
        assert exp.status.value == log[-1].to_status
        assert exp.attempts == sum(e.type.value == "claimed" for e in log)
        if exp.status is S.QUEUED:
            assert exp.worker_id is None and exp.lease_expires_at is None
        if exp.lease_expires_at is not None:
            assert exp.worker_id is not None and exp.status in (S.IN_PROGRESS, S.PAUSED)
    finished = lab.store.campaigns.get(cid)
    counts = lab.store.campaigns.status_counts(cid)
    if all(s in ("completed", "failed", "cancelled") for s in counts):
        assert finished.status.value in ("completed", "cancelled")
