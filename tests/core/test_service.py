"""The use cases over a real database: lifecycle rules, concurrency, trash, campaigns."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labledger.core.campaigns import CampaignService
from labledger.core.idempotency import IdempotencyClaim
from labledger.core.lifecycle import TERMINAL, TRANSITIONS, Action, ExperimentStatus
from labledger.core.models import (
    EventType,
    Experiment,
    ExperimentDesign,
    ExperimentQuery,
    ExperimentRegistration,
    ExperimentUpdate,
    OwnershipInfo,
)
from labledger.core.service import ExperimentService, NewExperiment
from labledger.core.specs import CampaignSpec
from labledger.errors import (
    CampaignNotFound,
    Conflict,
    DuplicateRequest,
    ExperimentNotFound,
    IllegalTransition,
    InvalidInput,
    StorageError,
)
from labledger.storage.engine import create_db_engine
from labledger.storage.schema import ensure_ready
from labledger.storage.sql import SqlStore

S = ExperimentStatus


def make_service(url: str) -> tuple[ExperimentService, object]:
    engine = create_db_engine(url)
    ensure_ready(engine, url)
    return ExperimentService(SqlStore(engine)), engine


@pytest.fixture
def service(db_url: str) -> Iterator[ExperimentService]:
    svc, engine = make_service(db_url)
    yield svc
    engine.dispose()  # type: ignore[attr-defined]


def register(name: str = "titration", **kw: object) -> ExperimentRegistration:
    return ExperimentRegistration.model_validate(
        {"experiment_design": {"experiment_name": name}, **kw}
    )


def test_create_starts_at_once_with_utc_times(service: ExperimentService) -> None:
    exp = service.create_experiment(register(run_name="r1"), actor="alice")
    assert exp.status is S.IN_PROGRESS
    assert exp.started_at is not None and exp.started_at.utcoffset() is not None
    stored = service.get_experiment(exp.experiment_id)
    assert stored.run_name == "r1"
    assert stored.started_at == exp.started_at
    events = service.list_events(experiment_id=exp.experiment_id)
    assert [(e.type, e.to_status, e.actor) for e in events] == [
        (EventType.CREATED, "in_progress", "alice")
    ]


def test_planned_and_queued_are_not_started(service: ExperimentService) -> None:
    planned = service.create_experiment(register(status="planned"))
    queued = service.create_experiment(register(status="queued", priority=5))
    assert planned.status is S.PLANNED and planned.started_at is None
    assert queued.status is S.QUEUED and queued.priority == 5
    started = service.apply_action(planned.experiment_id, Action.START)
    assert started.status is S.IN_PROGRESS and started.started_at is not None


def test_design_parameters_are_overridden_by_run_parameters(service: ExperimentService) -> None:
    reg = ExperimentRegistration(
        experiment_design=ExperimentDesign(experiment_name="x", parameters={"lr": 0.1, "n": 3}),
        parameters={"lr": 0.01},
    )
    exp = service.create_experiment(reg)
    assert service.get_experiment(exp.experiment_id).parameters == {"lr": 0.01, "n": 3}


@pytest.mark.parametrize("terminal", [S.COMPLETED, S.FAILED, S.CANCELLED], ids=str)
def test_every_terminal_state_sets_ended_at_and_is_final(
    service: ExperimentService, terminal: S
) -> None:
    exp = service.create_experiment(register())
    action = {S.COMPLETED: Action.END, S.FAILED: Action.FAIL, S.CANCELLED: Action.CANCEL}[terminal]
    ended = service.apply_action(exp.experiment_id, action)
    assert ended.status is terminal and ended.ended_at is not None
    with pytest.raises(IllegalTransition) as info:
        service.apply_action(exp.experiment_id, Action.CONTINUE)
    assert f"'{terminal}'" in str(info.value) and "'in_progress'" in str(info.value)


def test_end_with_status_and_repeated_end_keeps_first_ended_at(service: ExperimentService) -> None:
    exp = service.create_experiment(register())
    failed = service.apply_action(exp.experiment_id, Action.END, end_status=S.FAILED)
    again = service.apply_action(exp.experiment_id, Action.END, end_status=S.FAILED)
    assert failed.status is S.FAILED
    assert again.ended_at == failed.ended_at and again.version == failed.version
    with pytest.raises(IllegalTransition, match="'failed' to 'completed'"):
        service.apply_action(exp.experiment_id, Action.END)


def test_unknown_experiment_and_campaign_are_not_found(service: ExperimentService) -> None:
    with pytest.raises(ExperimentNotFound):
        service.get_experiment("01J00000000000000000000000")
    with pytest.raises(CampaignNotFound):
        service.create_experiment(register(campaign_id="01J00000000000000000000000"))


def test_patch_replaces_given_fields_only(service: ExperimentService) -> None:
    exp = service.create_experiment(register(run_name="a", metadata={"k": 1}))
    patched = service.update_experiment(
        exp.experiment_id, ExperimentUpdate(run_description="why", parameters={"x": 2})
    )
    assert patched.run_name == "a" and patched.run_description == "why"
    assert patched.parameters == {"x": 2} and patched.metadata == {"k": 1}
    with pytest.raises(InvalidInput):
        service.update_experiment(exp.experiment_id, ExperimentUpdate())


def test_trash_keeps_record_and_events_until_purged(service: ExperimentService) -> None:
    exp = service.create_experiment(register())
    service.apply_action(exp.experiment_id, Action.PAUSE)
    service.delete_experiment(exp.experiment_id)
    with pytest.raises(ExperimentNotFound):
        service.get_experiment(exp.experiment_id)
    assert [e.experiment_id for e in service.list_trash()] == [exp.experiment_id]
    types = [e.type for e in service.list_events(experiment_id=exp.experiment_id)]
    assert types == [EventType.CREATED, EventType.STATUS_CHANGED, EventType.DELETED]
    with pytest.raises(Conflict):
        service.purge_experiment(service.create_experiment(register()).experiment_id)
    restored = service.restore_experiment(exp.experiment_id)
    assert restored.deleted_at is None and restored.status is S.PAUSED
    service.delete_experiment(exp.experiment_id)
    service.purge_experiment(exp.experiment_id)
    with pytest.raises(ExperimentNotFound):
        service.list_events(experiment_id=exp.experiment_id)
    assert service.list_trash() == []


def test_campaign_links_declared_and_registered_experiments(service: ExperimentService) -> None:
    campaigns = CampaignService(service.store)
    first = service.create_experiment(register())
    campaign = campaigns.create(
        CampaignSpec(campaign_name="screen"), experiment_ids=[first.experiment_id]
    )
    later = service.create_experiment(
        ExperimentRegistration(
            experiment_design=ExperimentDesign(
                experiment_name="y",
                ownership_info=OwnershipInfo(campaign_id=campaign.campaign_id),
            )
        )
    )
    got = service.get_campaign(campaign.campaign_id)
    assert got.experiment_ids == [first.experiment_id, later.experiment_id]
    assert service.get_experiment(first.experiment_id).campaign_id == campaign.campaign_id
    assert [c.campaign_id for c in service.list_campaigns()] == [campaign.campaign_id]
    with pytest.raises(InvalidInput, match="experiment_ids"):
        campaigns.create(
            CampaignSpec(campaign_name="bad"), experiment_ids=["01J00000000000000000000000"]
        )


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_parallel_writers_on_one_experiment_lose_no_update(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "pg_url")
    service, engine = make_service(url)
    exp = service.create_experiment(register())
    done: list[int] = []
    errors: list[BaseException] = []

    def toggle(n: int) -> None:
        ok = 0
        for _ in range(n):
            for action in (Action.PAUSE, Action.CONTINUE):
                try:
                    before = service.get_experiment(exp.experiment_id).version
                    after = service.apply_action(exp.experiment_id, action)
                    if after.version > before:
                        ok += 1
                except BaseException as exc:  # pragma: no cover - reported below
                    errors.append(exc)
        done.append(ok)

    threads = [threading.Thread(target=toggle, args=(15,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    final = service.get_experiment(exp.experiment_id)
    changes = [
        e
        for e in service.list_events(experiment_id=exp.experiment_id)
        if e.type is EventType.STATUS_CHANGED
    ]
    # Every applied change left exactly one event, and the events form one unbroken chain:
    # no two writers moved the experiment out of the same state.
    assert final.version == 1 + len(changes)
    state = "in_progress"
    for event in changes:
        assert event.from_status == state
        state = event.to_status or ""
    assert state == final.status.value
    engine.dispose()  # type: ignore[attr-defined]


ACTIONS = st.sampled_from(
    [a for a in Action if a is not Action.END] + ["end:failed", "end:cancelled", "end:completed"]
)


@pytest.fixture(scope="module")
def sqlite_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExperimentService]:
    url = f"sqlite:///{tmp_path_factory.mktemp('prop')}/p.sqlite3"
    svc, engine = make_service(url)
    yield svc
    engine.dispose()  # type: ignore[attr-defined]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    initial=st.sampled_from(["planned", "queued", "in_progress"]),
    actions=st.lists(ACTIONS, max_size=12),
)
def test_random_action_sequences_never_reach_an_illegal_state(
    sqlite_service: ExperimentService, initial: str, actions: list[object]
) -> None:
    service = sqlite_service
    exp = service.create_experiment(register(status=initial))
    state = exp.status
    started = exp.started_at is not None
    for raw in actions:
        end_status = None
        if isinstance(raw, str) and raw.startswith("end:"):
            action, end_status = Action.END, S(raw.split(":")[1])
        else:
            assert isinstance(raw, Action)
            action = raw
        try:
            after = service.apply_action(exp.experiment_id, action, end_status=end_status)
        except IllegalTransition as exc:
            assert exc.current == state
            assert exc.requested not in TRANSITIONS[state]
            continue
        assert after.status == state or after.status in TRANSITIONS[state]
        state = after.status
        started = started or state is S.IN_PROGRESS
        assert (after.ended_at is not None) == (state in TERMINAL)
        assert (after.started_at is not None) == started
    stored = service.get_experiment(exp.experiment_id)
    assert stored.status == state


def test_registrations_created_together_each_get_their_experiment(
    service: ExperimentService,
) -> None:
    answers = service.create_experiments(
        [NewExperiment(register(f"r{i}", run_name=f"run {i}"), f"actor {i}") for i in range(5)]
    )
    assert [a.run_name for a in answers] == [f"run {i}" for i in range(5)]  # type: ignore[union-attr]
    for i, exp in enumerate(answers):
        stored = service.get_experiment(exp.experiment_id)  # type: ignore[union-attr]
        assert stored.run_name == f"run {i}" and stored.status is S.IN_PROGRESS
        (created,) = service.list_events(experiment_id=stored.experiment_id)
        assert created.type is EventType.CREATED and created.actor == f"actor {i}"


def test_a_registration_that_cannot_be_made_fails_alone(service: ExperimentService) -> None:
    answers = service.create_experiments(
        [
            NewExperiment(register("a")),
            NewExperiment(register("b", campaign_id="01J00000000000000000000000")),
            NewExperiment(register("c")),
        ]
    )
    assert isinstance(answers[1], CampaignNotFound)
    for answer in (answers[0], answers[2]):
        assert service.get_experiment(answer.experiment_id) == answer  # type: ignore[union-attr]
    assert service.count_experiments() == 2


def _claim(key: str) -> IdempotencyClaim:
    return IdempotencyClaim("anonymous", key, "POST", "/experiment", f"print of {key}")


def test_keys_are_stored_with_their_experiments_and_a_used_key_fails_alone(
    service: ExperimentService,
) -> None:
    (first,) = service.create_experiments([NewExperiment(register("first"), None, _claim("k1"))])
    assert isinstance(first, Experiment)
    claims = [_claim("k2"), _claim("k1"), None, _claim("k3")]
    answers = service.create_experiments(
        [NewExperiment(register(f"r{i}"), None, c) for i, c in enumerate(claims)]
    )
    # k1 was committed with the first experiment: its twin fails alone, as a lost claim
    assert isinstance(answers[1], DuplicateRequest) and claims[1] is not None and claims[1].lost
    made = [a for a in answers if isinstance(a, Experiment)]
    names = [a.experiment_design.experiment_name if a.experiment_design else None for a in made]
    assert names == ["r0", "r2", "r3"]
    assert claims[0] is not None and claims[0].resource_id == made[0].experiment_id
    assert claims[3] is not None and claims[3].resource_id == made[2].experiment_id
    assert service.count_experiments() == 4
    answers = service.create_experiments([NewExperiment(register("again"), None, _claim("k3"))])
    assert isinstance(answers[0], DuplicateRequest)  # k3 was stored by the shared transaction


def test_a_row_the_database_refuses_fails_alone_when_created_together(pg_url: str) -> None:
    """PostgreSQL refuses a NUL in text (the API refuses it before, the models do not): the shared
    transaction fails, each experiment is then stored on its own, and only that one fails."""
    service, engine = make_service(pg_url)
    try:
        answers = service.create_experiments(
            [
                NewExperiment(register("a")),
                NewExperiment(register("b", run_name="nul \x00")),
                NewExperiment(register("c")),
            ]
        )
        assert isinstance(answers[1], StorageError)
        stored = service.list_experiments(ExperimentQuery())
        assert sorted(e.experiment_design.experiment_name for e in stored) == ["a", "c"]  # type: ignore[union-attr]
    finally:
        engine.dispose()  # type: ignore[attr-defined]
