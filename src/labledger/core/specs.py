"""Campaign specs: what a ``*.campaign.yaml`` file or a ``POST /campaigns`` body holds.

Pure models (shared by the service, the server and the client): listed experiments and a
parameter sweep (a grid, a list, or both) that becomes one experiment per point.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, Field, model_validator

from labledger.core.models import MAX_NAME, ExperimentDesign, LabModel, OwnershipInfo
from labledger.errors import InvalidInput

__all__ = ["MAX_SWEEP", "CampaignSpec", "ExperimentSpec", "SweepSpec"]

JsonObject = dict[str, Any]

#: most experiments one campaign spec may create
MAX_SWEEP = 10_000


class ExperimentSpec(LabModel):
    """One experiment listed in a campaign spec."""

    run_name: str | None = Field(default=None, max_length=MAX_NAME)
    run_description: str | None = None
    parameters: JsonObject = Field(default_factory=dict)
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    not_before: datetime | None = None


class SweepSpec(LabModel):
    """A parameter sweep: every combination of ``grid`` values, then each ``points`` entry."""

    grid: dict[str, list[Any]] = Field(
        default_factory=dict, description="parameter -> values; the cartesian product is run."
    )
    points: list[JsonObject] = Field(
        default_factory=list,
        validation_alias=AliasChoices("points", "list"),
        description="Explicit parameter sets (YAML key 'list' or 'points').",
    )

    @model_validator(mode="after")
    def _sizes(self) -> SweepSpec:
        for name, values in self.grid.items():
            if not values:
                raise ValueError(f"sweep.grid.{name}: expected a non-empty list of values")
        return self

    def combinations(self) -> list[JsonObject]:
        """The parameter sets of the sweep, grid first (in the order the keys were given)."""
        out: list[JsonObject] = []
        if self.grid:
            names = list(self.grid)
            size = 1
            for values in self.grid.values():
                size *= len(values)
            if size > MAX_SWEEP:
                raise InvalidInput(
                    f"sweep.grid: {size} combinations, at most {MAX_SWEEP} per campaign",
                    field="sweep.grid",
                )
            out.extend(
                dict(zip(names, combo, strict=True))
                for combo in itertools.product(*self.grid.values())
            )
        out.extend(dict(p) for p in self.points)
        return out


class CampaignSpec(LabModel):
    """A campaign definition: the content of a ``*.campaign.yaml`` file, or a POST body."""

    campaign_name: str = Field(
        min_length=1, max_length=MAX_NAME, validation_alias=AliasChoices("campaign_name", "name")
    )
    campaign_description: str | None = Field(
        default=None, validation_alias=AliasChoices("campaign_description", "description")
    )
    ownership_info: OwnershipInfo = Field(default_factory=OwnershipInfo)
    parameters: JsonObject = Field(default_factory=dict, description="Campaign-level values.")
    metadata: JsonObject = Field(default_factory=dict)
    experiment_design: ExperimentDesign | None = Field(
        default=None,
        validation_alias=AliasChoices("experiment_design", "design"),
        description="The design every experiment of the campaign runs (needed with experiments).",
    )
    status: Literal["planned", "queued"] = Field(
        default="queued", description="Initial status of the campaign's experiments."
    )
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000)
    experiments: list[ExperimentSpec] = Field(default_factory=list)
    sweep: SweepSpec | None = None

    @model_validator(mode="after")
    def _design_needed(self) -> CampaignSpec:
        if (self.experiments or self.sweep) and self.experiment_design is None:
            raise ValueError(
                "experiment_design: needed when the campaign lists experiments or a sweep "
                "(e.g. experiment_design: {experiment_name: titration})"
            )
        return self

    def experiment_specs(self) -> list[ExperimentSpec]:
        """Every experiment the spec asks for: listed ones, then the sweep's points."""
        specs = list(self.experiments)
        if self.sweep is not None:
            points = self.sweep.combinations()
            specs.extend(
                ExperimentSpec(run_name=_point_name(p), parameters=p, priority=self.priority)
                for p in points
            )
        if len(specs) > MAX_SWEEP:
            raise InvalidInput(
                f"experiments: {len(specs)} experiments, at most {MAX_SWEEP} per campaign",
                field="experiments",
            )
        return specs


def _point_name(point: JsonObject) -> str:
    text = ", ".join(f"{k}={v}" for k, v in point.items())
    return text[:MAX_NAME] or "default"
