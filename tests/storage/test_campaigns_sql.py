"""A campaign's experiment ids as the store reads them: the declared ones, then the linked ones
by creation, in pages, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from labledger.core.models import Experiment, ExperimentalCampaign, ExperimentDesign
from labledger.storage.sql import SqlStore

START = datetime(2026, 1, 1, tzinfo=UTC)


def _linked(campaign_id: str, ids: list[str]) -> list[Experiment]:
    """Experiments of ``campaign_id`` created one second apart, in the order of ``ids``."""
    return [
        Experiment(
            _id=exp_id,
            experiment_design=ExperimentDesign(experiment_name="linked"),
            campaign_id=campaign_id,
            created_at=START + timedelta(seconds=n),
        )
        for n, exp_id in enumerate(ids)
    ]


def _campaign(store: SqlStore, name: str, ids: list[str]) -> str:
    campaign = ExperimentalCampaign(campaign_name=name)
    store.campaigns.insert(campaign, [])
    store.experiments.insert_many(_linked(campaign.campaign_id, ids), [])
    return campaign.campaign_id


def test_ids_with_the_separator_in_them_are_read_whole(store: SqlStore) -> None:
    # an imported record may carry any id of up to 26 characters, a comma included
    odd = ["01JD000000000000000000000A", "with,a comma", "01JD000000000000000000000C", ",", ""]
    plain = [f"01JE00000000000000000000{n:02d}" for n in range(3)]
    odd_campaign = _campaign(store, "odd", odd)
    plain_campaign = _campaign(store, "plain", plain)

    assert store.campaigns.get(odd_campaign).experiment_ids == odd
    assert store.campaigns.get(odd_campaign, ids_limit=2, ids_offset=1).experiment_ids == odd[1:3]
    pages = {c.campaign_id: c.experiment_ids for c in store.campaigns.find(10, 0, ids_limit=4)}
    assert pages == {odd_campaign: odd[:4], plain_campaign: plain}


def test_a_big_campaign_gives_every_id_in_creation_order(store: SqlStore) -> None:
    ids = [f"01JF{n:022d}" for n in range(3000)]
    campaign_id = _campaign(store, "big", ids[::-1])  # created in the reverse order of the ids
    whole = store.campaigns.get(campaign_id)
    assert whole.experiment_ids == ids[::-1] and whole.experiment_count == 3000
    page = store.campaigns.get(campaign_id, ids_limit=500, ids_offset=2400)
    assert page.experiment_ids == ids[::-1][2400:2900]
    other = _campaign(store, "small", ["01JG000000000000000000000A"])
    pages = {c.campaign_id: c.experiment_ids for c in store.campaigns.find(10, 0, ids_limit=None)}
    assert pages == {campaign_id: ids[::-1], other: ["01JG000000000000000000000A"]}


@pytest.mark.parametrize(
    ("ids_limit", "ids_offset"),
    [(None, 0), (0, 0), (2, 0), (2, 3), (3, 1), (10, 10), (None, 4)],
    ids=["all", "none", "first-two", "two-after-three", "three-after-one", "past-end", "rest"],
)
def test_a_page_of_campaigns_gives_each_the_ids_it_gives_alone(
    store: SqlStore, ids_limit: int | None, ids_offset: int
) -> None:
    # linked only (one of them trashed), declared (a declared id is linked too), declared and
    # linked, and none: the list reads its ids in one statement on PostgreSQL where a campaign
    # declared none, and one campaign reads them the way the list did before
    linked = _campaign(store, "linked", [f"01JH{n:022d}" for n in range(6)])
    trashed = store.experiments.get(f"01JH{2:022d}")
    store.experiments.update(trashed.experiment_id, trashed.version, {"deleted_at": START}, [])
    declared_ids = [f"01JK{n:022d}" for n in range(4)]
    store.experiments.insert_many(
        [e.model_copy(update={"campaign_id": None}) for e in _linked("none", declared_ids)], []
    )
    declared = ExperimentalCampaign(campaign_name="declared", experiment_ids=declared_ids[:3])
    store.campaigns.insert(declared, [])
    both = ExperimentalCampaign(campaign_name="both", experiment_ids=[declared_ids[3]])
    store.campaigns.insert(both, [])
    store.experiments.insert_many(_linked(both.campaign_id, ["01JM000000000000000000000A"]), [])
    empty = ExperimentalCampaign(campaign_name="empty")
    store.campaigns.insert(empty, [])

    def alone(campaign_id: str) -> tuple[str, list[str], int | None]:
        one = store.campaigns.get(campaign_id, ids_limit=ids_limit, ids_offset=ids_offset)
        return one.campaign_id, one.experiment_ids or [], one.experiment_count

    for number, offset in [(0, 0), (2, 1), (10, 3)]:
        page = store.campaigns.find(number, offset, ids_limit=ids_limit, ids_offset=ids_offset)
        listed = [(c.campaign_id, c.experiment_ids or [], c.experiment_count) for c in page]
        assert listed == [alone(c.campaign_id) for c in page]
        assert len(listed) == min(number or 4, 4 - offset)
    assert {alone(c)[2] for c in (linked, declared.campaign_id, empty.campaign_id)} == {5, 3, 0}
    assert alone(both.campaign_id)[2] == 2
