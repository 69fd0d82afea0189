"""labledger: record and control experiments, from a lab's workcell to a laptop's scripts.

The public names below are imported lazily, so that ``labledger --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from labledger.client.sync import ExperimentClient
    from labledger.core.lifecycle import Action, CampaignStatus, ExperimentStatus
    from labledger.core.models import (
        Experiment,
        ExperimentalCampaign,
        ExperimentDesign,
        ExperimentRegistration,
        OwnershipInfo,
    )
    from labledger.errors import LabledgerError

__all__ = [
    "Action",
    "CampaignStatus",
    "Experiment",
    "ExperimentClient",
    "ExperimentDesign",
    "ExperimentRegistration",
    "ExperimentStatus",
    "ExperimentalCampaign",
    "LabledgerError",
    "OwnershipInfo",
]
__version__ = "0.1.0"

_WHERE = {
    "Action": "labledger.core.lifecycle",
    "CampaignStatus": "labledger.core.lifecycle",
    "ExperimentStatus": "labledger.core.lifecycle",
    "Experiment": "labledger.core.models",
    "ExperimentalCampaign": "labledger.core.models",
    "ExperimentDesign": "labledger.core.models",
    "ExperimentRegistration": "labledger.core.models",
    "OwnershipInfo": "labledger.core.models",
    "ExperimentClient": "labledger.client.sync",
    "LabledgerError": "labledger.errors",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'labledger' has no attribute {name!r}")
