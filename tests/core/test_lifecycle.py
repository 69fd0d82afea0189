"""The transition table and its checks."""

from __future__ import annotations

import pytest

from labledger.core.lifecycle import (
    CAMPAIGN_TRANSITIONS,
    MADSCI_STATUSES,
    TERMINAL,
    TRANSITIONS,
    Action,
    CampaignStatus,
    ExperimentStatus,
    check_campaign_transition,
    check_transition,
    madsci_status,
    parse_status,
    target_of,
)
from labledger.errors import IllegalTransition, InvalidInput

S = ExperimentStatus


def test_every_state_has_a_row_and_terminal_states_lead_nowhere() -> None:
    assert set(TRANSITIONS) == set(S)
    for state in TERMINAL:
        assert TRANSITIONS[state] == frozenset()
    for state, targets in TRANSITIONS.items():
        assert state not in targets, f"{state} lists itself"
        assert S.PLANNED not in targets or state is S.QUEUED


@pytest.mark.parametrize(
    ("current", "requested"),
    [
        (S.COMPLETED, S.IN_PROGRESS),
        (S.CANCELLED, S.COMPLETED),
        (S.FAILED, S.PAUSED),
        (S.PLANNED, S.PAUSED),
        (S.PLANNED, S.COMPLETED),
    ],
    ids=lambda s: str(s),
)
def test_illegal_change_names_both_states(current: S, requested: S) -> None:
    with pytest.raises(IllegalTransition) as info:
        check_transition(current, requested, entity_id="X")
    message = str(info.value)
    assert f"'{current}'" in message and f"'{requested}'" in message
    assert info.value.details["current_status"] == current
    assert info.value.details["requested_status"] == requested


def test_same_state_is_a_no_op_and_allowed_change_is_true() -> None:
    assert check_transition(S.PAUSED, S.PAUSED) is False
    assert check_transition(S.IN_PROGRESS, S.PAUSED) is True


def test_continue_resumes_started_and_requeues_never_started() -> None:
    assert target_of(Action.CONTINUE, started=True) is S.IN_PROGRESS
    assert target_of(Action.CONTINUE, started=False) is S.QUEUED


def test_end_takes_only_terminal_states() -> None:
    assert target_of(Action.END, started=True) is S.COMPLETED
    assert target_of(Action.END, started=True, end_status=S.FAILED) is S.FAILED
    with pytest.raises(InvalidInput, match="terminal"):
        target_of(Action.END, started=True, end_status=S.PAUSED)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("failed", S.FAILED),
        ("ExperimentStatus.FAILED", S.FAILED),
        ("ExperimentStatus.COMPLETED", S.COMPLETED),
        (" cancelled ", S.CANCELLED),
        ("IN_PROGRESS", S.IN_PROGRESS),
    ],
)
def test_parse_status_reads_both_madsci_encodings(raw: str, expected: S) -> None:
    assert parse_status(raw) is expected


def test_parse_status_names_the_field_and_the_choices() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_status("done")
    assert info.value.field == "status"
    assert "completed" in str(info.value) and "'done'" in str(info.value)


def test_madsci_view_maps_unstarted_states_to_unknown() -> None:
    for state in S:
        assert madsci_status(state) in MADSCI_STATUSES
    assert madsci_status(S.QUEUED) is S.UNKNOWN
    assert madsci_status(S.PLANNED) is S.UNKNOWN
    assert madsci_status(S.PAUSED) is S.PAUSED


def test_campaign_table_is_complete_cancelled_is_final_completed_reopens() -> None:
    assert set(CAMPAIGN_TRANSITIONS) == set(CampaignStatus)
    assert check_campaign_transition(CampaignStatus.PLANNED, CampaignStatus.ACTIVE)
    assert check_campaign_transition(CampaignStatus.COMPLETED, CampaignStatus.ACTIVE)  # reopen
    with pytest.raises(IllegalTransition, match=r"'cancelled'.*'active'"):
        check_campaign_transition(CampaignStatus.CANCELLED, CampaignStatus.ACTIVE)
    with pytest.raises(IllegalTransition, match=r"'completed'.*'paused'"):
        check_campaign_transition(CampaignStatus.COMPLETED, CampaignStatus.PAUSED)
