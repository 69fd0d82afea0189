"""Names and limits shared by the server's models and the recorder's run records.

Kept apart from :mod:`labledger.core.models` (pydantic) so that the local recorder, which reads
and writes run records without pydantic, uses the very same event kinds and length limits.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["MAX_NAME", "MAX_TEXT", "EventType"]

#: longest name accepted (run names, experiment names, campaign names)
MAX_NAME = 1_000
#: longest free text accepted (descriptions, hypotheses, observations)
MAX_TEXT = 100_000


class EventType(StrEnum):
    """What happened. Status changes carry from/to states."""

    CREATED = "created"
    STATUS_CHANGED = "status_changed"
    UPDATED = "updated"
    DELETED = "deleted"
    RESTORED = "restored"
    CAMPAIGN_CREATED = "campaign_created"
    CAMPAIGN_STATUS_CHANGED = "campaign_status_changed"
    CAMPAIGN_UPDATED = "campaign_updated"
    CLAIMED = "claimed"
    LEASE_EXPIRED = "lease_expired"
    RESULT_ADDED = "result_added"
    PROGRESS = "progress"
    MILESTONE = "milestone"
    RESOURCE_USED = "resource_used"
    #: a pause/resume/cancel of the experiment carried to its workflows on the Workcell Manager
    WORKFLOW_CONTROL = "workflow_control"
