"""Python client of the labledger service (sync and async), MADSci method names included."""

from __future__ import annotations

from labledger.client.aio import AsyncExperimentClient
from labledger.client.sync import ExperimentClient

__all__ = ["AsyncExperimentClient", "ExperimentClient"]
