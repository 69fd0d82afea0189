"""Campaign lifecycle, sweeps, results, milestones and resource uses on a real database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from labledger.core.campaigns import CampaignSpec
from labledger.core.lab import Lab
from labledger.core.lifecycle import CampaignStatus, ExperimentStatus
from labledger.core.queue import ClaimRequest, FinishRequest
from labledger.core.records import MilestoneCreate, ProgressUpdate, ResourceUseCreate
from labledger.errors import IllegalTransition, InvalidInput, NotFound
from labledger.storage.engine import create_db_engine
from labledger.storage.schema import ensure_ready
from labledger.storage.sql import SqlStore

S = ExperimentStatus
C = CampaignStatus


@pytest.fixture
def lab(db_url: str) -> Iterator[Lab]:
    engine = create_db_engine(db_url)
    ensure_ready(engine, db_url)
    yield Lab(SqlStore(engine), lease_seconds=30)
    engine.dispose()


def sweep_spec(**kw: object) -> CampaignSpec:
    return CampaignSpec.model_validate(
        {
            "name": "buffer screen",
            "description": "pH x salt",
            "design": {"experiment_name": "titration", "parameters": {"volume_ml": 10}},
            "sweep": {"grid": {"ph": [6, 7, 8], "salt": ["NaCl", "KCl"]}, "list": [{"ph": 9}]},
            **kw,
        }
    )


def test_a_sweep_creates_a_planned_campaign_of_queued_experiments(lab: Lab) -> None:
    campaign = lab.campaigns.create(sweep_spec())
    assert campaign.status is C.PLANNED and len(campaign.experiment_ids or []) == 7
    exps = lab.store.queue.find(["queued"], campaign_id=campaign.campaign_id, limit=0, offset=0)
    params = sorted((e.parameters["ph"], e.parameters.get("salt", "")) for e in exps)
    assert params == [
        (6, "KCl"),
        (6, "NaCl"),
        (7, "KCl"),
        (7, "NaCl"),
        (8, "KCl"),
        (8, "NaCl"),
        (9, ""),
    ]
    assert all(e.parameters["volume_ml"] == 10 for e in exps)
    assert all(e.ownership_info.campaign_id == campaign.campaign_id for e in exps)


def test_campaign_goes_active_on_first_claim_and_completed_when_all_finish(lab: Lab) -> None:
    campaign = lab.campaigns.create(sweep_spec(sweep={"list": [{"ph": 6}, {"ph": 7}]}))
    cid = campaign.campaign_id
    first = lab.queue.claim(ClaimRequest(worker_id="w"))
    assert first is not None
    assert lab.campaigns.store.campaigns.get(cid).status is C.ACTIVE
    lab.queue.finish(first.experiment_id, FinishRequest(worker_id="w"))
    second = lab.queue.claim(ClaimRequest(worker_id="w"))
    assert second is not None
    assert lab.store.campaigns.get(cid).status is C.ACTIVE
    lab.queue.finish(second.experiment_id, FinishRequest(status="failed", worker_id="w"))
    done = lab.store.campaigns.get(cid)
    assert done.status is C.COMPLETED and done.ended_at is not None
    kinds = [
        (e.from_status, e.to_status)
        for e in lab.store.events.find(campaign_id=cid)
        if e.type.value == "campaign_status_changed"
    ]
    assert kinds == [("planned", "active"), ("active", "completed")]


def test_pausing_a_campaign_pauses_running_and_holds_its_queue_until_resumed(lab: Lab) -> None:
    campaign = lab.campaigns.create(sweep_spec(sweep={"list": [{"ph": 6}, {"ph": 7}]}))
    cid = campaign.campaign_id
    running = lab.queue.claim(ClaimRequest(worker_id="w"))
    assert running is not None
    lab.campaigns.pause(cid)
    assert lab.store.campaigns.get(cid).status is C.PAUSED
    assert lab.store.experiments.get(running.experiment_id).status is S.PAUSED
    assert lab.queue.claim(ClaimRequest(worker_id="w2")) is None  # the queue is held
    lab.campaigns.resume(cid)
    assert lab.store.experiments.get(running.experiment_id).status is S.IN_PROGRESS
    nxt = lab.queue.claim(ClaimRequest(worker_id="w2"))
    assert nxt is not None and nxt.campaign_id == cid


def test_resume_leaves_experiments_paused_on_their_own(lab: Lab) -> None:
    from labledger.core.lifecycle import Action

    campaign = lab.campaigns.create(sweep_spec(sweep={"list": [{"ph": 6}, {"ph": 7}]}))
    a = lab.queue.claim(ClaimRequest(worker_id="w"))
    b = lab.queue.claim(ClaimRequest(worker_id="w"))
    assert a is not None and b is not None
    lab.experiments.apply_action(a.experiment_id, Action.PAUSE)
    lab.campaigns.pause(campaign.campaign_id)
    lab.campaigns.resume(campaign.campaign_id)
    assert lab.store.experiments.get(a.experiment_id).status is S.PAUSED
    assert lab.store.experiments.get(b.experiment_id).status is S.IN_PROGRESS


def test_cancelling_a_campaign_cancels_every_unfinished_experiment(lab: Lab) -> None:
    campaign = lab.campaigns.create(sweep_spec(sweep={"list": [{"ph": 6}, {"ph": 7}, {"ph": 8}]}))
    cid = campaign.campaign_id
    done = lab.queue.claim(ClaimRequest(worker_id="w"))
    assert done is not None
    lab.queue.finish(done.experiment_id, FinishRequest(worker_id="w"))
    lab.queue.claim(ClaimRequest(worker_id="w"))
    cancelled = lab.campaigns.cancel(cid)
    assert cancelled.status is C.CANCELLED
    assert lab.store.campaigns.status_counts(cid) == {"completed": 1, "cancelled": 2}
    with pytest.raises(IllegalTransition) as info:
        lab.campaigns.resume(cid)
    assert "'cancelled'" in info.value.message and "'active'" in info.value.message


def test_spec_errors_name_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        CampaignSpec.model_validate({"name": "x", "sweep": {"grid": {"ph": [1]}}})
    assert "experiment_design" in str(info.value)
    with pytest.raises(ValidationError, match=r"sweep\.grid\.ph"):
        CampaignSpec.model_validate(
            {"name": "x", "design": {"experiment_name": "t"}, "sweep": {"grid": {"ph": []}}}
        )
    big = CampaignSpec.model_validate(
        {
            "name": "x",
            "design": {"experiment_name": "t"},
            "sweep": {"grid": {"a": list(range(200)), "b": list(range(200))}},
        }
    )
    with pytest.raises(InvalidInput, match="40000 combinations"):
        big.experiment_specs()


def test_results_replace_by_name_and_gather_per_campaign(lab: Lab) -> None:
    campaign = lab.campaigns.create(sweep_spec(sweep={"list": [{"ph": 6}, {"ph": 7}]}))
    exp = lab.queue.claim(ClaimRequest(worker_id="w"))
    assert exp is not None
    lab.results.add_values(exp.experiment_id, {"yield": 0.5, "note": "cloudy"})
    lab.results.add_values(exp.experiment_id, {"yield": 0.75})
    by_name = {r.name: r.value for r in lab.results.list_results(exp.experiment_id)}
    assert by_name == {"note": "cloudy", "yield": 0.75}
    assert [r.name for r in lab.store.records.results(campaign_id=campaign.campaign_id)] == [
        "note",
        "yield",
    ]
    with pytest.raises(NotFound, match="no result named 'mass'"):
        lab.results.get_result(exp.experiment_id, "mass")
    with pytest.raises(InvalidInput, match="NaN"):
        lab.results.add_values(exp.experiment_id, {"bad": float("nan")})
    events = [
        e
        for e in lab.store.events.find(experiment_id=exp.experiment_id)
        if e.type.value == "result_added"
    ]
    assert [(e.data["name"], e.data["value"]) for e in events] == [
        ("yield", 0.5),
        ("note", "cloudy"),
        ("yield", 0.75),
    ]


def test_milestones_keep_the_checkpoint_to_resume_from(lab: Lab) -> None:
    campaign = lab.campaigns.create(sweep_spec(sweep={"list": [{"ph": 6}]}))
    exp_id = (campaign.experiment_ids or [])[0]
    assert lab.results.last_milestone(exp_id) is None
    lab.results.add_milestone(
        exp_id, MilestoneCreate(name="mixed", progress=0.25, data={"step": 1})
    )
    lab.results.add_milestone(
        exp_id, MilestoneCreate(name="heated", progress=0.5, data={"step": 2})
    )
    last = lab.results.last_milestone(exp_id)
    assert last is not None and (last.name, last.data) == ("heated", {"step": 2})
    assert lab.store.experiments.get(exp_id).progress == 0.5
    lab.results.set_progress(exp_id, ProgressUpdate(progress=0.6, message="cooling"))
    assert lab.store.experiments.get(exp_id).progress == 0.6


def test_which_experiments_used_a_sample(lab: Lab) -> None:
    campaign = lab.campaigns.create(sweep_spec(sweep={"list": [{"ph": 6}, {"ph": 7}, {"ph": 8}]}))
    a, b, c = campaign.experiment_ids or []
    lab.results.add_resources(
        a, [ResourceUseCreate(resource_id="sample-42", quantity=1.5, unit="ml")]
    )
    lab.results.add_resources(
        c,
        [
            ResourceUseCreate(resource_id="sample-42"),
            ResourceUseCreate(resource_id="pipette-3", resource_type="instrument"),
        ],
    )
    users = [u.experiment_id for u in lab.results.uses_of("sample-42")]
    assert users == [a, c] and b not in users
    assert [u.resource_id for u in lab.results.list_resources(c)] == ["sample-42", "pipette-3"]
